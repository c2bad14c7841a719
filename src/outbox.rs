//! The outbox worker: delivers committed replies through the sink, retries temporary failures
//! with exponential back-off, gives up after the configured time, and records every attempt.

use chrono::Utc;

use crate::config::OutboxSettings;
use crate::sink::ReplySink;
use crate::store::Store;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Delivers every reply that is due now.
pub async fn deliver_due(
    store: &Store,
    sink: &ReplySink,
    settings: &OutboxSettings,
) -> anyhow::Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    loop {
        let now = Utc::now().timestamp_millis();
        let due = store.due_replies(now, 200).await?;
        if due.is_empty() {
            return Ok(report);
        }
        for reply in due {
            let now = Utc::now().timestamp_millis();
            match sink.deliver(&reply).await {
                Ok(detail) => {
                    store.reply_sent(&reply.id, now, &detail).await?;
                    tracing::info!(reply = %reply.id, case = %reply.case_id, "reply delivered");
                    report.sent += 1;
                }
                Err(e) => {
                    let age_ms = now - reply.created_at;
                    let give_up_ms = settings.give_up_after_hours as i64 * 3_600_000;
                    if e.temporary && age_ms < give_up_ms {
                        let next = now + backoff_ms(settings, reply.attempts);
                        store.reply_retry(&reply.id, now, &e.message, next).await?;
                        tracing::warn!(reply = %reply.id, case = %reply.case_id, error = %e, attempt = reply.attempts + 1, "reply delivery failed; will retry");
                        report.retried += 1;
                    } else {
                        store.reply_failed(&reply.id, now, &e.message).await?;
                        tracing::error!(reply = %reply.id, case = %reply.case_id, error = %e, "reply delivery failed for good");
                        report.failed += 1;
                    }
                }
            }
        }
    }
}

/// Delay before the next attempt: initial × 2^attempts, capped.
pub fn backoff_ms(settings: &OutboxSettings, attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 30) as u32;
    let secs = settings
        .initial_backoff_secs
        .saturating_mul(1u64 << exp)
        .min(settings.max_backoff_secs);
    secs as i64 * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = OutboxSettings {
            initial_backoff_secs: 5,
            max_backoff_secs: 60,
            give_up_after_hours: 72,
        };
        assert_eq!(backoff_ms(&s, 0), 5_000);
        assert_eq!(backoff_ms(&s, 1), 10_000);
        assert_eq!(backoff_ms(&s, 3), 40_000);
        assert_eq!(backoff_ms(&s, 4), 60_000);
        assert_eq!(backoff_ms(&s, 1000), 60_000);
    }
}
