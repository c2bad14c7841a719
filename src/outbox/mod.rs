//! The outbox worker: delivers committed replies through the sink, retries temporary failures
//! with exponential back-off, gives up after the configured time, and records every attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;

use crate::sink::{Delivery, ReplySink};
use crate::store::Store;

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
    if let ReplySink::Smtp(smtp) = sink {
        // Replies handed over whose sender died before the server's answer was recorded.
        let now = Utc::now().timestamp_millis();
        let before = now - smtp.answer_deadline().as_millis() as i64;
        for id in store.hold_replies_in_doubt(before, now).await? {
            in_doubt(
                &id,
                "its sender stopped before the server's answer was recorded",
            );
            report.held += 1;
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
                tracing::warn!(reply = %reply.id, case = %reply.case_id, limit = %why, "reply held back by the rate limit");
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
        match sink {
            ReplySink::Smtp(smtp) => {
                // As many at once as the pool keeps connections; each is recorded as handed
                // over just before its end of data, and its answer right after.
                let results: Vec<_> = futures::stream::iter(to_send)
                    .map(|reply| async move {
                        let handed_at = AtomicI64::new(0);
                        let hand_over = || async {
                            let now = Utc::now().timestamp_millis();
                            handed_at.store(now, Ordering::Relaxed);
                            Ok(store.reply_handed_over(&reply.id, now).await?)
                        };
                        let delivery = smtp.deliver(&reply, hand_over).await?;
                        let now = Utc::now().timestamp_millis();
                        match &delivery {
                            Delivery::Accepted(detail) => {
                                record_answer(store, &reply.id, detail).await?
                            }
                            Delivery::Unanswered(_) => {
                                let at = handed_at.load(Ordering::Relaxed);
                                store.reply_in_doubt(&reply.id, now, at).await?;
                            }
                            _ => {}
                        }
                        anyhow::Ok((reply, now, delivery))
                    })
                    .buffer_unordered(smtp.connections())
                    .collect()
                    .await;
                for r in results {
                    let (reply, now, delivery) = r?;
                    match delivery {
                        Delivery::Accepted(_) => delivered(&reply, &mut report),
                        Delivery::Unanswered(detail) => {
                            in_doubt(&reply.id, &detail);
                            report.held += 1;
                        }
                        Delivery::NotDelivered(e) => {
                            not_delivered(store, settings, &reply, e, now, &mut report).await?
                        }
                        Delivery::Declined => {
                            tracing::warn!(reply = %reply.id, case = %reply.case_id,
                            "another instance took this reply over; not sent here")
                        }
                    }
                }
            }
            ReplySink::File(file_sink) => {
                let written = file_sink.deliver_all(to_send).await;
                let now = Utc::now().timestamp_millis();
                let mut sent = Vec::with_capacity(written.len());
                let mut ok = Vec::with_capacity(written.len());
                for (reply, result) in written {
                    match result {
                        Ok(detail) => {
                            sent.push((reply.id.clone(), detail));
                            ok.push(reply);
                        }
                        Err(e) => {
                            not_delivered(store, settings, &reply, e, now, &mut report).await?
                        }
                    }
                }
                store.replies_sent(&sent, now).await?;
                for reply in &ok {
                    delivered(reply, &mut report);
                }
            }
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
    if let ReplySink::Smtp(smtp) = sink {
        smtp.close().await;
    }
    report
}

/// A reply whose delivery is in doubt is held for staff (`Store::reply_in_doubt`): logged
/// and counted, never sent again by itself.
fn in_doubt(reply: &str, detail: &str) {
    tracing::warn!(reply = %reply, %detail,
        "reply in doubt: the SMTP server may have it; held for staff, not sent again");
    metrics::counter!(crate::telemetry::REPLY_DELIVERIES, "result" => "in_doubt").increment(1);
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
    tracing::info!(reply = %reply.id, case = %reply.case_id, "reply delivered");
    report.sent += 1;
    metrics::counter!(crate::telemetry::REPLY_DELIVERIES, "result" => "sent").increment(1);
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
        tracing::warn!(reply = %reply.id, case = %reply.case_id, error = %e, attempt = reply.attempts + 1, "reply delivery failed; will retry");
        report.retried += 1;
        metrics::counter!(crate::telemetry::REPLY_DELIVERIES, "result" => "retry").increment(1);
    } else {
        store.reply_failed(&reply.id, now, &e.message).await?;
        tracing::error!(reply = %reply.id, case = %reply.case_id, error = %e, "reply delivery failed for good");
        report.failed += 1;
        metrics::counter!(crate::telemetry::REPLY_DELIVERIES, "result" => "failed").increment(1);
    }
    Ok(())
}

/// The per-recipient rate limit over one pass: the store is asked once per recipient (the
/// count scans the outbox), and what this pass sends is added on top.
#[derive(Default)]
struct RateLimiter {
    /// Lower-cased recipient (ASCII, as SQLite's `lower`) → replies sent within the window
    /// and within 24 h.
    sent: HashMap<String, (i64, i64)>,
}

impl RateLimiter {
    /// Why a reply to `recipient` must be held back now, if it must. Counts replies already
    /// sent, so a robot that answers every reply without marking itself gets at most the limit.
    async fn over(
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
    fn sent(&mut self, recipient: &str) {
        if let Some((window, day)) = self.sent.get_mut(&recipient.to_ascii_lowercase()) {
            *window += 1;
            *day += 1;
        }
    }
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

// `[outbox]` and `[rate_limit]`: owned by the outbox, gathered by `config`.

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
    use crate::case::{CaseContext, CaseKind, CheckedCase, Fields};
    use crate::sink::FileSink;
    use crate::store::RenderedReply;
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
        let Recorded::Processed { case_ids } =
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
