//! What the outbox tells ops about each reply: one variant per event, each writing its log
//! line and its `tjid_reply_deliveries_total` count together. Replies are named by their id
//! and case number, never by recipient.

use crate::sink::SinkError;
use crate::store::OutboxRow;
use crate::telemetry::REPLY_DELIVERIES;

pub(super) enum ReplyEvent<'a> {
    Delivered(&'a OutboxRow),
    /// The SMTP server may have it: held for staff, never sent again by itself.
    InDoubt {
        id: &'a str,
        detail: &'a str,
    },
    /// A temporary failure: tried again after its back-off.
    Retry(&'a OutboxRow, &'a SinkError),
    /// Refused for good, or temporary for longer than `give_up_after_hours`.
    Failed(&'a OutboxRow, &'a SinkError),
    /// Held back by the per-recipient rate limit (not a delivery: not counted there).
    RateLimited(&'a OutboxRow, &'a str),
}

impl ReplyEvent<'_> {
    pub fn emit(&self) {
        let result = match self {
            ReplyEvent::Delivered(reply) => {
                tracing::info!(reply = %reply.id, case = %reply.case_id, "reply delivered");
                "sent"
            }
            ReplyEvent::InDoubt { id, detail } => {
                tracing::warn!(reply = %id, %detail,
                    "reply in doubt: the SMTP server may have it; held for staff, not sent again");
                "in_doubt"
            }
            ReplyEvent::Retry(reply, e) => {
                tracing::warn!(reply = %reply.id, case = %reply.case_id, error = %e, attempt = reply.attempts + 1, "reply delivery failed; will retry");
                "retry"
            }
            ReplyEvent::Failed(reply, e) => {
                tracing::error!(reply = %reply.id, case = %reply.case_id, error = %e, "reply delivery failed for good");
                "failed"
            }
            ReplyEvent::RateLimited(reply, why) => {
                tracing::warn!(reply = %reply.id, case = %reply.case_id, limit = %why, "reply held back by the rate limit");
                return;
            }
        };
        metrics::counter!(REPLY_DELIVERIES, "result" => result).increment(1);
    }
}
