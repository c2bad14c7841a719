//! The time source of the staff part: the system clock in production, a settable one in
//! tests, so that sessions, rate limits and retention can be tested without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that stands still until it is set or advanced.
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    pub fn fixed(now_ms: i64) -> Clock {
        Clock::Fixed(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => chrono::Utc::now().timestamp_millis(),
            Clock::Fixed(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a fixed clock forward; the system clock cannot be moved.
    pub fn advance_ms(&self, ms: i64) {
        if let Clock::Fixed(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

pub const DAY_MS: i64 = 24 * 3_600_000;

/// A time for people: local time to the minute, empty for an impossible value.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}
