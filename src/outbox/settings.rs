//! `[outbox]` and `[rate_limit]`: owned by the outbox, gathered by `config`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OutboxSettings {
    /// First retry delay; doubles per attempt up to `max_backoff_secs`.
    pub initial_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// After this long without success a reply is marked failed.
    pub give_up_after_hours: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            initial_backoff_secs: 5,
            max_backoff_secs: 3600,
            give_up_after_hours: 72,
        }
    }
}

/// Per-recipient limit on the automatic replies to incoming mail: breaks loops with robots
/// that do not mark themselves. A unit that sends 20 forms within an hour gets 20 receipts;
/// what staff trigger is never counted or held.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// At most `max_per_window` replies to one address within `window_secs`…
    pub max_per_window: u32,
    pub window_secs: u64,
    /// …and at most `max_per_day` within 24 hours. 0 turns a limit off.
    pub max_per_day: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            max_per_window: 30,
            window_secs: 600,
            max_per_day: 100,
        }
    }
}

impl OutboxSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        match self.initial_backoff_secs == 0 || self.max_backoff_secs < self.initial_backoff_secs {
            true => vec![
                "outbox.initial_backoff_secs / max_backoff_secs: need 0 < initial <= max".into(),
            ],
            false => Vec::new(),
        }
    }
}

impl RateLimitSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        match self.max_per_window > 0 && self.window_secs == 0 {
            true => {
                vec!["rate_limit.window_secs: must be at least 1 when max_per_window is set".into()]
            }
            false => Vec::new(),
        }
    }
}
