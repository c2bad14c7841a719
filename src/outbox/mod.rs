//! The outbox worker: delivers committed replies through the sink, retries temporary failures
//! with exponential back-off, gives up after the configured time, and records every attempt.
//! One algorithm for every sink (`ReplySink::deliver`): a sink whose sending cannot be taken
//! back (SMTP) calls the hand-over fence before its point of no return, and such a reply's
//! answer is recorded at once; a sink that can repeat a delivery harmlessly (the .eml files)
//! does not, and its replies are recorded together at the end of the pass. The per-recipient
//! limit is in `rate`, the settings in `settings`.

mod events;
mod rate;
mod settings;

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
use futures::StreamExt;

use crate::sink::{Delivery, ReplySink};
use crate::store::Store;
use events::ReplyEvent;
use rate::RateLimiter;
pub use settings::{OutboxSettings, RateLimitSettings};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Held back by the per-recipient rate limit, or held in doubt.
    pub held: usize,
    /// A reply failed because the sink itself did (unreachable, refusing every mail).
    pub sink_down: bool,
}

/// When the worker tidies the outbox's tables (`Store::tidy_outbox`): once `TIDY_EVERY`
/// replies were settled since the last time, or `TIDY_AFTER` after the first of fewer. Every
/// settled reply leaves dead row versions in PostgreSQL; the worker clears them itself instead
/// of counting on the server's autovacuum (issue 25).
#[derive(Default)]
pub struct Tidy {
    settled: usize,
    since: Option<std::time::Instant>,
}

/// See [`Tidy`].
pub const TIDY_EVERY: usize = 500;
/// See [`Tidy`].
pub const TIDY_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

impl Tidy {
    /// Counts a pass's settled replies and tidies when it is time.
    pub async fn after(&mut self, store: &Store, report: &DeliveryReport) {
        let settled = report.sent + report.retried + report.failed + report.held;
        if settled > 0 && self.since.is_none() {
            self.since = Some(std::time::Instant::now());
        }
        self.settled += settled;
        let due = self.settled >= TIDY_EVERY
            || (self.settled > 0 && self.since.is_some_and(|t| t.elapsed() >= TIDY_AFTER));
        if !due {
            return;
        }
        *self = Tidy::default();
        if let Err(e) = store.tidy_outbox().await {
            tracing::warn!(error = %e, "cannot vacuum the outbox; trying again later");
        }
    }
}

/// Delivers every reply that is due now.
///
/// Files are written on both cores and a pass's written replies are marked sent in one
/// transaction: a crash in between leaves them pending, and writing one again renames it onto
/// the same `<reply id>.eml`, so no reply is answered twice. An SMTP send cannot be taken
/// back: each reply is recorded as handed over (committed) after its message is written and
/// before SMTP's final `.` (see `sink::smtp`). A sender that dies before that commit leaves
/// an open transaction the server discards, and the reply is sent again at once; after it the
/// reply is never sent again by itself: when the server's answer is not recorded it is held
/// in doubt for staff (`Store::reply_in_doubt`). Up to `[smtp] pool_max_size` replies are
/// handed over at once, one per connection. One pass at a time per store: a pass begins by
/// dropping the store's own claims (`Store::drop_my_claims`).
pub async fn deliver_due(
    store: &Store,
    sink: &ReplySink,
    settings: &OutboxSettings,
    rate: &RateLimitSettings,
) -> anyhow::Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    // Nothing of this instance is in flight now: what it still claims, an earlier pass left.
    store.drop_my_claims().await?;
    if let Some(deadline) = sink.answer_deadline() {
        // Replies handed over whose sender died before the server's answer was recorded.
        let now = Utc::now().timestamp_millis();
        let before = now - deadline.as_millis() as i64;
        for id in store.hold_replies_in_doubt(before, now).await? {
            in_doubt(
                &id,
                "its sender stopped before the server's answer was recorded",
                &mut report,
            );
        }
    }
    loop {
        let now = Utc::now().timestamp_millis();
        let due = store
            .take_due_replies(
                now,
                crate::store::OUTBOX_BATCH,
                crate::store::OUTBOX_CLAIM_MS,
            )
            .await?;
        if due.is_empty() {
            return Ok(report);
        }
        // Another pass only when this one delivered something: a failing sink is not hammered.
        let sent_before = report.sent;
        let mut limiter = RateLimiter::default();
        let mut to_send = Vec::new();
        for reply in due {
            let now = Utc::now().timestamp_millis();
            // Staff released it or caused it: they know the recipient.
            let limited = match reply.rate_limited() {
                false => None,
                true => limiter.over(store, rate, &reply.recipient, now).await?,
            };
            if let Some(why) = limited {
                store.reply_held(&reply.id, now, &why).await?;
                ReplyEvent::RateLimited(&reply, &why).emit();
                report.held += 1;
                continue;
            }
            // Counted against the limit before it is handed over (one that fails is counted
            // too: the limit errs on the side of fewer replies).
            if reply.rate_limited() {
                limiter.sent(&reply.recipient);
            }
            to_send.push(reply);
        }
        // As many at once as the sink takes (SMTP: one per kept connection). A reply handed
        // over is recorded as such just before its point of no return, and its answer right
        // after; the others' answers are recorded together below.
        let results: Vec<_> = futures::stream::iter(to_send)
            .map(|reply| async move {
                let handed_at = AtomicI64::new(0);
                let hand_over = || async {
                    let now = Utc::now().timestamp_millis();
                    handed_at.store(now, Ordering::Relaxed);
                    Ok(store.reply_handed_over(&reply.id, now).await?)
                };
                let delivery = sink.deliver(&reply, hand_over).await?;
                let now = Utc::now().timestamp_millis();
                let handed_at = handed_at.load(Ordering::Relaxed);
                match &delivery {
                    Delivery::Accepted(detail) if handed_at > 0 => {
                        record_answer(store, &reply.id, detail).await?
                    }
                    Delivery::Unanswered(_) => {
                        store.reply_in_doubt(&reply.id, now, handed_at).await?;
                    }
                    _ => {}
                }
                anyhow::Ok((reply, now, delivery, handed_at > 0))
            })
            .buffer_unordered(sink.parallelism())
            .collect()
            .await;
        let mut accepted = Vec::new();
        let mut unrecorded = Vec::new();
        for r in results {
            let (reply, now, delivery, handed) = r?;
            match delivery {
                Delivery::Accepted(detail) => {
                    if !handed {
                        unrecorded.push((reply.id.clone(), detail));
                    }
                    accepted.push(reply);
                }
                Delivery::Unanswered(detail) => in_doubt(&reply.id, &detail, &mut report),
                Delivery::NotDelivered(e) => {
                    not_delivered(store, settings, &reply, e, now, &mut report).await?
                }
                Delivery::Declined => {
                    tracing::warn!(reply = %reply.id, case = %reply.case_id,
                    "another instance took this reply over; not sent here")
                }
            }
        }
        // Delivered again harmlessly if this commit is lost: one transaction for the pass.
        store
            .replies_sent(&unrecorded, Utc::now().timestamp_millis())
            .await?;
        for reply in &accepted {
            delivered(reply, &mut report);
        }
        if report.sent == sent_before {
            return Ok(report);
        }
    }
}

/// How often a sink that is down is asked whether it answers again.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// After a pass that found the sink down: whether it answers now. When it does, the replies
/// waiting for a retry are made due at once (`Store::retry_waiting_now`) instead of after
/// their back-off, and the sink is reported up.
pub async fn sink_back(store: &Store, sink: &ReplySink) -> anyhow::Result<bool> {
    if let Err(why) = sink.probe().await {
        tracing::debug!(error = %why, "the reply sink is still down");
        return Ok(false);
    }
    crate::telemetry::component_seen(crate::telemetry::Component::Sink, true);
    let due = store
        .retry_waiting_now(Utc::now().timestamp_millis())
        .await?;
    tracing::info!(
        replies = due,
        "the reply sink answers again; replies waiting for a retry go now"
    );
    Ok(true)
}

/// One `deliver_due` for a command that exits after it: the kept SMTP connections are then
/// closed with QUIT.
pub async fn deliver_once(
    store: &Store,
    sink: &ReplySink,
    settings: &OutboxSettings,
    rate: &RateLimitSettings,
) -> anyhow::Result<DeliveryReport> {
    let report = deliver_due(store, sink, settings, rate).await;
    sink.close().await;
    report
}

/// A reply whose delivery is in doubt is held for staff (`Store::reply_in_doubt`).
fn in_doubt(id: &str, detail: &str, report: &mut DeliveryReport) {
    ReplyEvent::InDoubt { id, detail }.emit();
    report.held += 1;
}

/// Records the server's acceptance, trying again for a while when the store does not answer
/// (the reply is delivered: leaving it unrecorded would later hold it as in doubt).
async fn record_answer(store: &Store, id: &str, detail: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match store
            .reply_sent(id, Utc::now().timestamp_millis(), detail)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() < RECORD_ANSWER_FOR => {
                tracing::warn!(reply = %id, error = %e, "cannot record the SMTP server's acceptance yet; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long `record_answer` keeps trying.
const RECORD_ANSWER_FOR: std::time::Duration = std::time::Duration::from_secs(300);

fn delivered(reply: &crate::store::OutboxRow, report: &mut DeliveryReport) {
    crate::telemetry::component_seen(crate::telemetry::Component::Sink, true);
    ReplyEvent::Delivered(reply).emit();
    report.sent += 1;
}

/// Records a failed delivery: retried with back-off while it is temporary and young enough,
/// failed for good otherwise.
async fn not_delivered(
    store: &Store,
    settings: &OutboxSettings,
    reply: &crate::store::OutboxRow,
    e: crate::sink::SinkError,
    now: i64,
    report: &mut DeliveryReport,
) -> anyhow::Result<()> {
    // A temporary failure is the sink's (unreachable, refusing for now); a permanent one is
    // the server refusing this reply alone, which it could only do by answering.
    crate::telemetry::component_seen(crate::telemetry::Component::Sink, !e.temporary);
    report.sink_down |= e.sink_down;
    let age_ms = now - reply.created_at;
    let give_up_ms = settings.give_up_after_hours as i64 * 3_600_000;
    if e.temporary && age_ms < give_up_ms {
        let next = now + backoff_ms(settings, reply.attempts);
        store.reply_retry(&reply.id, now, &e.message, next).await?;
        ReplyEvent::Retry(reply, &e).emit();
        report.retried += 1;
    } else {
        store.reply_failed(&reply.id, now, &e.message).await?;
        ReplyEvent::Failed(reply, &e).emit();
        report.failed += 1;
    }
    Ok(())
}

/// Delay before the next attempt: initial × 2^attempts, capped.
pub fn backoff_ms(settings: &OutboxSettings, attempts: i64) -> i64 {
    let ms = |secs: u64| secs.saturating_mul(1000);
    let delay = crate::clock::backoff_ms(
        ms(settings.initial_backoff_secs),
        ms(settings.max_backoff_secs),
        attempts,
    );
    delay.min(i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = OutboxSettings {
            initial_backoff_secs: 5,
            max_backoff_secs: 60,
            ..OutboxSettings::default()
        };
        assert_eq!(backoff_ms(&s, 0), 5_000);
        assert_eq!(backoff_ms(&s, 1), 10_000);
        assert_eq!(backoff_ms(&s, 3), 40_000);
        assert_eq!(backoff_ms(&s, 4), 60_000);
        assert_eq!(backoff_ms(&s, 1000), 60_000);
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::RateLimitSettings;
    use super::*;
    use crate::case::RenderedReply;
    use crate::case::{CaseContext, CaseKind, CheckedCase, Fields};
    use crate::sink::FileSink;
    use crate::store::{MailRecord, Recorded};

    /// Records one email from `a@b.se` with one case and its reply; returns the case number.
    async fn record_one(store: &Store, n: usize) -> String {
        let mail = MailRecord {
            source_ref: format!("test:{n}"),
            message_id: Some(format!("<m{n}@x>")),
            content_hash: format!("h{n}"),
            received_at: 0,
            email_date: None,
            sender: Some("a@b.se".into()),
            subject: "s".into(),
            headers: String::new(),
            ignored: None,
            error: None,
            bounce: None,
        };
        let case = CheckedCase::new(
            CaseKind::Unknown,
            vec![],
            vec![],
            Fields::default(),
            CaseContext::default(),
        );
        let render = |_: &CheckedCase, _: &str, id: &str| {
            Some(RenderedReply {
                message_id: id.into(),
                sender: "tjansteid-intake@vgregion.se".into(),
                recipient: "a@b.se".into(),
                subject: "Re: s".into(),
                raw: b"Subject: Re: s\r\n\r\nhej\r\n".to_vec(),
            })
        };
        let now = Utc::now().timestamp_millis();
        let Recorded::Processed { case_ids, .. } =
            store.record(&mail, &[case], &render, now).await.unwrap()
        else {
            panic!()
        };
        case_ids[0].clone()
    }

    #[tokio::test]
    async fn a_held_reply_released_by_staff_goes_out_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let sink = ReplySink::File(FileSink::open(&dir.path().join("out")).unwrap());
        let rate = RateLimitSettings {
            max_per_window: 1,
            window_secs: 600,
            max_per_day: 40,
        };
        let settings = OutboxSettings::default();
        let first = record_one(&store, 1).await;
        let second = record_one(&store, 2).await;
        let report = deliver_due(&store, &sink, &settings, &rate).await.unwrap();
        assert_eq!((report.sent, report.held), (1, 1));
        // Replies go out in the order of their cases: the second one is held.
        let detail = store.case_detail(&second).await.unwrap().unwrap();
        assert_eq!(detail.replies[0].status, "held");
        // Nothing to release on the case whose reply went out.
        assert_eq!(
            store.release_held(&first, None, "anna", 1).await.unwrap(),
            0
        );
        assert_eq!(
            store.release_held(&second, None, "anna", 1).await.unwrap(),
            1
        );
        let report = deliver_due(&store, &sink, &settings, &rate).await.unwrap();
        assert_eq!((report.sent, report.held), (1, 0), "past the limit");
        let detail = store.case_detail(&second).await.unwrap().unwrap();
        assert_eq!(detail.replies[0].status, "sent");
        assert!(detail
            .audit
            .iter()
            .any(|a| a.action == "reply_released" && a.actor == "anna"));
    }

    #[tokio::test]
    async fn a_failed_delivery_is_recorded_retried_and_then_delivered_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let case_ids = [record_one(&store, 1).await];
        let out = dir.path().join("out");
        let sink = ReplySink::File(FileSink::open(&out).unwrap());
        // The folder disappears: a temporary failure of the sink itself.
        std::fs::remove_dir_all(&out).unwrap();
        // A back-off far longer than the test: the reply goes again because the sink answers.
        let settings = OutboxSettings {
            initial_backoff_secs: 3600,
            max_backoff_secs: 3600,
            give_up_after_hours: 1,
        };
        let report = deliver_due(&store, &sink, &settings, &Default::default())
            .await
            .unwrap();
        assert_eq!(
            report,
            DeliveryReport {
                sent: 0,
                retried: 1,
                failed: 0,
                held: 0,
                sink_down: true,
            }
        );
        assert!(!sink_back(&store, &sink).await.unwrap(), "still down");
        let report = deliver_due(&store, &sink, &settings, &Default::default())
            .await
            .unwrap();
        assert_eq!(report, DeliveryReport::default(), "waits for its back-off");
        std::fs::create_dir_all(out.join(".staging")).unwrap();
        assert!(sink_back(&store, &sink).await.unwrap(), "the sink answers");
        let report = deliver_due(&store, &sink, &settings, &Default::default())
            .await
            .unwrap();
        assert_eq!(report.sent, 1, "at once, not after the back-off");
        let detail = store.case_detail(&case_ids[0]).await.unwrap().unwrap();
        assert_eq!(detail.replies[0].status, "sent");
        assert_eq!(detail.replies[0].attempts, 2);
        assert_eq!(
            std::fs::read_dir(&out)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().is_file())
                .count(),
            1
        );
    }
}
