//! The per-recipient rate limit on automatic replies (`[rate_limit]`): breaks loops with
//! robots that do not mark themselves.

use std::collections::HashMap;

use super::RateLimitSettings;
use crate::store::Store;

/// The per-recipient rate limit over one pass: the store is asked once per recipient (the
/// count scans the outbox), and what this pass sends is added on top.
#[derive(Default)]
pub(super) struct RateLimiter {
    /// Lower-cased recipient (ASCII, as SQLite's `lower`) → replies sent within the window
    /// and within 24 h.
    sent: HashMap<String, (i64, i64)>,
}

impl RateLimiter {
    /// Why a reply to `recipient` must be held back now, if it must. Counts replies already
    /// sent, so a robot that answers every reply without marking itself gets at most the limit.
    pub(super) async fn over(
        &mut self,
        store: &Store,
        rate: &RateLimitSettings,
        recipient: &str,
        now_ms: i64,
    ) -> anyhow::Result<Option<String>> {
        if rate.max_per_window == 0 && rate.max_per_day == 0 {
            return Ok(None);
        }
        let key = recipient.to_ascii_lowercase();
        let (window, day) = match self.sent.get(&key) {
            Some(counts) => *counts,
            None => {
                let window = if rate.max_per_window > 0 {
                    store
                        .replies_sent_to(recipient, now_ms - rate.window_secs as i64 * 1000)
                        .await?
                } else {
                    0
                };
                let day = if rate.max_per_day > 0 {
                    store
                        .replies_sent_to(recipient, now_ms - 86_400_000)
                        .await?
                } else {
                    0
                };
                self.sent.insert(key, (window, day));
                (window, day)
            }
        };
        if rate.max_per_window > 0 && window >= i64::from(rate.max_per_window) {
            return Ok(Some(format!(
                "rate limit: {window} replies to this recipient within {} s (max {})",
                rate.window_secs, rate.max_per_window
            )));
        }
        if rate.max_per_day > 0 && day >= i64::from(rate.max_per_day) {
            return Ok(Some(format!(
                "rate limit: {day} replies to this recipient within 24 h (max {})",
                rate.max_per_day
            )));
        }
        Ok(None)
    }

    /// Counts a reply to `recipient` sent in this pass.
    pub(super) fn sent(&mut self, recipient: &str) {
        if let Some((window, day)) = self.sent.get_mut(&recipient.to_ascii_lowercase()) {
            *window += 1;
            *day += 1;
        }
    }
}
