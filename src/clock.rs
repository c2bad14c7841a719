//! The time source of the staff part: the system clock in production, a settable one in
//! tests, so that sessions, rate limits and retention can be tested without waiting. Also
//! the time helpers the components share: times for people and the one retry back-off.

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

/// Exponential back-off, the one used for every retry (IMAP reconnects, replies in the
/// outbox, emails waiting for KIV): `initial_ms` doubled for each failure before this one
/// (at most 30 doublings; a negative count counts as none), capped at `max_ms`.
pub fn backoff_ms(initial_ms: u64, max_ms: u64, failures: i64) -> u64 {
    let exp = failures.clamp(0, 30) as u32;
    initial_ms.saturating_mul(1u64 << exp).min(max_ms)
}

/// `ms` with ±50 % jitter, so that many clients do not retry in step.
pub fn jittered(ms: u64) -> std::time::Duration {
    let factor = fastrand::f64() + 0.5;
    std::time::Duration::from_millis((ms as f64 * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(5_000, 60_000, 0), 5_000);
        assert_eq!(backoff_ms(5_000, 60_000, 1), 10_000);
        assert_eq!(backoff_ms(5_000, 60_000, 3), 40_000);
        assert_eq!(backoff_ms(5_000, 60_000, 4), 60_000);
        assert_eq!(backoff_ms(5_000, 60_000, 1000), 60_000);
        assert_eq!(backoff_ms(5_000, 60_000, -3), 5_000);
        assert_eq!(backoff_ms(u64::MAX / 2, u64::MAX, 30), u64::MAX);
    }

    #[test]
    fn jitter_stays_within_half_either_way() {
        for _ in 0..100 {
            let ms = jittered(1000).as_millis();
            assert!((500..=1500).contains(&ms), "{ms}");
        }
    }
}
