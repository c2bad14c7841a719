//! Writing one email's outcome: to the store (its cases and replies in one transaction), or
//! for `--dry-run` to memory only; an email that waits for KIV is noted with its next try.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::Utc;
use serde::Serialize;

use crate::case::{CheckedCase, Decision, EmailOutcome, IgnoreReason, WarningCode};
use crate::pipeline::parse::parse_mail;
use crate::pipeline::reply::build_reply;
use crate::source::Input;
use crate::store::{MailRecord, Recorded, Store, WaitingMail};

use super::engine::{log_token, Analysis, Intake};
use super::flow::WaitingForKiv;

/// The outcome of one email, as `process --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub source: String,
    pub message_id: Option<String>,
    pub decision: EmailOutcome,
    pub ignored_reason: Option<IgnoreReason>,
    pub cases: Vec<CaseOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub replay: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub case_id: String,
    pub kind: crate::case::CaseKind,
    pub decision: Decision,
    pub reasons: Vec<crate::case::Finding<crate::case::ReasonCode>>,
    pub warnings: Vec<crate::case::Finding<crate::case::WarningCode>>,
    pub fields: crate::case::Fields,
    /// SPEC §4.4: the fields whose uncertain reading holds the case for staff.
    pub verify: Vec<Option<&'static str>>,
}

/// Where outcomes are recorded: the store, or (for `--dry-run`) memory only.
pub enum Recorder {
    Store(Store),
    DryRun(Mutex<DryRun>),
}

#[derive(Default)]
pub struct DryRun {
    message_ids: HashSet<String>,
    last_case: i64,
}

impl Intake {
    pub(super) async fn note_waiting(
        &self,
        input: &Input,
        waiting: &WaitingForKiv,
        recorder: &Recorder,
    ) -> anyhow::Result<()> {
        let source = log_token(&input.source_ref);
        let Recorder::Store(store) = recorder else {
            tracing::warn!(source = %source, error = %waiting.error, "KIV cannot be reached; the email is not decided");
            return Ok(());
        };
        // Only the headers are needed here; parsing again is cheap and keeps the prepared
        // mail out of the error path.
        let mail = parse_mail(&input.raw).ok();
        let record = WaitingMail {
            source_ref: input.source_ref.clone(),
            message_id: mail.as_ref().and_then(|m| m.message_id.clone()),
            sender: mail.as_ref().and_then(|m| m.from.clone()),
            subject: mail.as_ref().map(|m| m.subject.clone()).unwrap_or_default(),
            error: waiting.error.clone(),
        };
        let ldap = &self.parts.ldap;
        let now = Utc::now().timestamp_millis();
        let attempts = store
            .mark_waiting(&record, now, ldap.retry_initial_ms, ldap.retry_max_ms)
            .await?;
        if attempts == 1 {
            tracing::warn!(source = %source, error = %waiting.error, "KIV cannot be reached; the email waits and will be tried again");
        } else {
            tracing::debug!(source = %source, attempts, error = %waiting.error, "KIV still cannot be reached; the email waits");
        }
        Ok(())
    }

    pub(super) async fn record(
        &self,
        input: &Input,
        analysis: &Analysis,
        recorder: &Recorder,
    ) -> anyhow::Result<Outcome> {
        // An email quarantined before it was read (too large, a panic, a time-out) still has
        // a header that names its sender and subject for staff.
        let header_only = match (&analysis.mail, &analysis.error) {
            (None, Some(_)) => crate::pipeline::parse::parse_headers_only(&input.raw),
            _ => None,
        };
        let mail = analysis.mail.as_ref().or(header_only.as_ref());
        let message_id = mail.and_then(|m| m.message_id.clone());
        let now_ms = Utc::now().timestamp_millis();
        let reply_settings = self.reply_settings();
        let render = |case: &CheckedCase, case_id: &str, reply_id: &str| {
            let mail = mail?;
            match build_reply(mail, case, case_id, reply_id, &reply_settings) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(case = case_id, error = %e, "no reply for case");
                    None
                }
            }
        };
        let recorded = match recorder {
            Recorder::Store(store) => {
                let record = MailRecord {
                    source_ref: input.source_ref.clone(),
                    message_id: message_id.clone(),
                    content_hash: analysis.content_hash.clone(),
                    received_at: now_ms,
                    email_date: mail.and_then(|m| m.date).map(|d| d.to_rfc3339()),
                    sender: mail.and_then(|m| m.from.clone()),
                    subject: mail.map(|m| m.subject.clone()).unwrap_or_default(),
                    headers: mail.map(|m| m.raw_headers.clone()).unwrap_or_default(),
                    ignored: analysis.ignored,
                    error: analysis.error.clone(),
                    bounce: match analysis.ignored {
                        Some(IgnoreReason::Bounce) => crate::bounce::link(&input.raw),
                        _ => None,
                    },
                };
                store
                    .record(&record, &analysis.cases, &render, now_ms)
                    .await?
            }
            Recorder::DryRun(state) => {
                let mut state = state
                    .lock()
                    .map_err(|_| anyhow::anyhow!("dry-run state poisoned"))?;
                dry_run_record(&mut state, message_id.as_deref(), analysis, now_ms)
            }
        };
        let (decision, ignored_reason, case_ids, flagged, replay) = match &recorded {
            Recorded::AlreadyRecorded => (EmailOutcome::Processed, None, &[][..], &[][..], true),
            Recorded::Ignored(r) => (EmailOutcome::Ignored, Some(*r), &[][..], &[][..], false),
            Recorded::Quarantined => (EmailOutcome::Quarantined, None, &[][..], &[][..], false),
            Recorded::Processed {
                case_ids,
                open_order_exists,
            } => (
                EmailOutcome::Processed,
                None,
                case_ids.as_slice(),
                open_order_exists.as_slice(),
                false,
            ),
        };
        let cases = case_ids
            .iter()
            .zip(analysis.cases.iter())
            .enumerate()
            .map(|(i, (case_id, c))| CaseOutcome {
                case_id: case_id.clone(),
                kind: c.kind,
                decision: c.decision,
                reasons: c.reasons.clone(),
                // The store flags a second open order for one person at one unit (SPEC §4.3)
                // as it records the case.
                warnings: with_open_order(&c.warnings, flagged.contains(&i)),
                fields: c.fields.clone(),
                verify: c.verify.clone(),
            })
            .collect();
        Ok(Outcome {
            source: input.display.clone(),
            message_id,
            decision,
            ignored_reason,
            cases,
            error: if recorded == Recorded::Quarantined {
                analysis.error.clone()
            } else {
                None
            },
            replay,
        })
    }
}

/// A case's warnings, with `open_order_exists` added when the store flagged it.
fn with_open_order(
    warnings: &[crate::case::Finding<WarningCode>],
    flagged: bool,
) -> Vec<crate::case::Finding<WarningCode>> {
    let mut warnings = warnings.to_vec();
    if flagged
        && !warnings
            .iter()
            .any(|w| w.code == WarningCode::OpenOrderExists)
    {
        warnings.push(crate::case::Finding::new(
            WarningCode::OpenOrderExists,
            Some("personnummer"),
        ));
    }
    warnings
}

fn dry_run_record(
    state: &mut DryRun,
    message_id: Option<&str>,
    analysis: &Analysis,
    now_ms: i64,
) -> Recorded {
    if let Some(id) = message_id {
        if analysis.error.is_none() && !state.message_ids.insert(id.to_string()) {
            return Recorded::Ignored(IgnoreReason::Duplicate);
        }
    }
    if let Some(reason) = analysis.ignored {
        return Recorded::Ignored(reason);
    }
    if analysis.error.is_some() {
        return Recorded::Quarantined;
    }
    let year = chrono::DateTime::from_timestamp_millis(now_ms).map(|d| d.format("%Y").to_string());
    let year: i64 = year.and_then(|y| y.parse().ok()).unwrap_or(1970);
    let case_ids = analysis
        .cases
        .iter()
        .map(|_| {
            state.last_case += 1;
            crate::case_id(year, state.last_case)
        })
        .collect();
    Recorded::Processed {
        case_ids,
        open_order_exists: Vec::new(),
    }
}
