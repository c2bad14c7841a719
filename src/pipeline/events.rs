//! What the pipeline tells ops: one type per event, each writing its log line and its
//! metrics together, so that the two cannot drift apart. No personal data: emails are named
//! by a token of their Message-ID and source (`log_token`), cases by their number.

use std::time::Instant;

use crate::case::{EmailOutcome, WarningCode};
use crate::source::Input;
use crate::telemetry as t;

use super::engine::{log_token, Analysis};
use super::record::{CaseOutcome, Outcome};

/// One email settled: recorded (processed, ignored, quarantined) or acknowledged again as
/// already recorded before a restart. Each of its cases is a [`CaseDecided`].
pub(super) struct EmailSettled<'a> {
    pub input: &'a Input,
    pub analysis: &'a Analysis,
    pub outcome: &'a Outcome,
    pub started: Instant,
}

impl EmailSettled<'_> {
    pub fn emit(&self) {
        let outcome = self.outcome;
        let msg = outcome
            .message_id
            .as_deref()
            .map(log_token)
            .unwrap_or_else(|| "-".into());
        let source = log_token(&self.input.source_ref);
        let kind = match outcome.replay {
            true => "replay",
            false => outcome.decision.as_str(),
        };
        metrics::counter!(t::EMAILS, "outcome" => kind).increment(1);
        metrics::histogram!(t::PROCESSING_SECONDS).record(self.started.elapsed().as_secs_f64());
        if outcome.replay {
            tracing::info!(msg = %msg, source = %source, "email already recorded before a restart; acknowledged");
            return;
        }
        match (outcome.decision, outcome.ignored_reason) {
            (EmailOutcome::Ignored, Some(reason)) => {
                metrics::counter!(t::EMAILS_IGNORED, "reason" => reason.as_str()).increment(1);
                tracing::info!(msg = %msg, source = %source, reason = %reason, "email ignored")
            }
            (EmailOutcome::Quarantined, _) => {
                tracing::warn!(msg = %msg, source = %source, error = outcome.error.as_deref().unwrap_or(""), "email quarantined")
            }
            _ => {
                let ms = self.analysis.elapsed.as_secs_f64() * 1000.0;
                tracing::info!(msg = %msg, source = %source, cases = outcome.cases.len(), elapsed_ms = format!("{ms:.1}"), "email processed");
                for case in &outcome.cases {
                    CaseDecided { case }.emit();
                }
            }
        }
    }
}

/// One case decided: its decision, reasons and warnings.
struct CaseDecided<'a> {
    case: &'a CaseOutcome,
}

impl CaseDecided<'_> {
    fn emit(&self) {
        let c = self.case;
        metrics::counter!(t::CASES, "kind" => c.kind.as_str(), "decision" => c.decision.as_str())
            .increment(1);
        for r in &c.reasons {
            metrics::counter!(t::CASE_REASONS, "code" => r.code.as_str()).increment(1);
        }
        for w in &c.warnings {
            metrics::counter!(t::CASE_WARNINGS, "code" => w.code.as_str()).increment(1);
        }
        if c.warnings
            .iter()
            .any(|w| w.code == WarningCode::LowOcrConfidence)
        {
            metrics::counter!(t::CASES_LOW_OCR, "decision" => c.decision.as_str()).increment(1);
        }
        let reasons: Vec<&str> = c.reasons.iter().map(|r| r.code.as_str()).collect();
        let warnings: Vec<&str> = c.warnings.iter().map(|w| w.code.as_str()).collect();
        tracing::info!(
            case = %c.case_id,
            kind = %c.kind,
            decision = %c.decision,
            reasons = %reasons.join(","),
            warnings = %warnings.join(","),
            "case decided"
        );
    }
}
