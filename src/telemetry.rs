//! Logging: human-readable lines by default, JSON when configured; always on standard error,
//! so that standard output carries only command results. Log lines carry case numbers, codes
//! and short hashes, never a personnummer or a name.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use serde::Deserialize;

pub fn init(settings: &LogSettings) {
    // PostgreSQL's notices (`relation "_sqlx_migrations" already exists, skipping` at every
    // start) are the server talking to itself: shown only when asked for by RUST_LOG.
    let quiet = |f: EnvFilter| match "sqlx::postgres::notice=warn".parse() {
        Ok(directive) => f.add_directive(directive),
        Err(_) => f,
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level).map(quiet))
        .unwrap_or_else(|_| quiet(EnvFilter::new("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

// Metric names (Prometheus). Counters and gauges are set where things happen; with no
// recorder installed (`process`, tests) they cost nothing.
/// Emails by `outcome`: processed, ignored, quarantined, replay.
pub const EMAILS: &str = "tjid_emails_total";
/// Ignored emails by `reason` (SPEC §4.1).
pub const EMAILS_IGNORED: &str = "tjid_emails_ignored_total";
/// Cases by `kind` and `decision`.
pub const CASES: &str = "tjid_cases_total";
/// Rejection reasons by `code`.
pub const CASE_REASONS: &str = "tjid_case_reasons_total";
/// Warnings by `code`.
pub const CASE_WARNINGS: &str = "tjid_case_warnings_total";
/// Seconds from reading an email to its outcome being committed.
pub const PROCESSING_SECONDS: &str = "tjid_email_processing_seconds";
/// Seconds to recognise one scanned page (OCR), blank pages included.
pub const OCR_PAGE_SECONDS: &str = "tjid_ocr_page_seconds";
/// Replies waiting in the outbox (pending).
pub const OUTBOX_PENDING: &str = "tjid_outbox_pending";
/// Replies that failed for good.
pub const OUTBOX_FAILED: &str = "tjid_outbox_failed";
/// Replies held for staff: by the rate limit or in doubt (Spärrade svar).
pub const OUTBOX_HELD: &str = "tjid_outbox_held";
/// Replies handed to the SMTP server whose answer is not recorded yet.
pub const OUTBOX_AWAITING: &str = "tjid_outbox_awaiting_answer";
/// Delivery attempts by `result`: sent, retry, failed.
pub const REPLY_DELIVERIES: &str = "tjid_reply_deliveries_total";
/// 1 while the IMAP session is connected and selected, 0 while it is not. Absent for Maildir.
/// The IMAP source sets it with [`set_imap_connected`].
pub const IMAP_CONNECTED: &str = "tjid_imap_connected";
/// 1 while this instance holds the lease on the IMAP folder (it reads it), 0 while another
/// does, by `instance`. Absent for Maildir.
pub const IMAP_LEASE_HELD: &str = "tjid_imap_lease_held";
/// Emails whose KIV check waits for LDAP to come back.
pub const LDAP_WAITING: &str = "tjid_ldap_waiting_emails";
/// 1 when the last LDAP look-up succeeded, 0 when it failed.
pub const LDAP_UP: &str = "tjid_ldap_up";
/// LDAP look-ups by `result`: ok, error, cached.
pub const LDAP_LOOKUPS: &str = "tjid_ldap_lookups_total";
/// Cases with at least one field read by OCR with low confidence, by `decision` (the warnings
/// metric counts the fields).
pub const CASES_LOW_OCR: &str = "tjid_cases_low_ocr_confidence_total";

/// Time an attachment spent in its worker process (round trip included).
pub const WORKER_SECONDS: &str = "tjid_worker_seconds";
/// Worker processes started (the first ones and their replacements).
pub const WORKER_STARTED: &str = "tjid_workers_started_total";
/// Worker processes killed or lost while reading an attachment (a limit, a crash).
pub const WORKER_KILLED: &str = "tjid_workers_killed_total";

/// 1 when the last reply handed to the sink (SMTP server or reply folder) went through or was
/// refused by the server for that reply alone, 0 when the sink could not be reached.
pub const SINK_UP: &str = "tjid_sink_up";

/// 1 while the store answers the daemon's watch (every few seconds), 0 while it does not.
pub const STORE_UP: &str = "tjid_store_up";

/// An outside service the daemon depends on, whose state `/readyz` and the metrics show as
/// last seen. KIV and the sink have no separate probe: the daemon's own look-ups and
/// deliveries are the checks; the store is watched (`app::daemon`). Each going down and
/// coming back is one WARN line, with how long it was gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// KIV over LDAP.
    Directory,
    /// Where replies go: the SMTP server or the reply folder.
    Sink,
    /// The database (SQLite or PostgreSQL).
    Store,
    /// Where mail comes in: the IMAP server (its session), or the Maildir.
    Mailbox,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Directory => "KIV",
            Component::Sink => "the reply sink",
            Component::Store => "the store",
            Component::Mailbox => "the mailbox",
        }
    }
}

/// A change of a component's state worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Down,
    /// Back after this many milliseconds.
    Back(i64),
}

/// What seeing `ok` at `now` after `before` changes, and the new state.
fn next_state(before: ComponentState, ok: bool, now: i64) -> (ComponentState, Option<Transition>) {
    match (before, ok) {
        (ComponentState::Ok { since_ms }, true) => (ComponentState::Ok { since_ms }, None),
        (ComponentState::Failing { since_ms, .. }, true) => (
            ComponentState::Ok { since_ms: now },
            Some(Transition::Back(now - since_ms)),
        ),
        (ComponentState::Unknown, true) => (ComponentState::Ok { since_ms: now }, None),
        (ComponentState::Failing { since_ms, failures }, false) => (
            ComponentState::Failing {
                since_ms,
                failures: failures + 1,
            },
            None,
        ),
        (_, false) => (
            ComponentState::Failing {
                since_ms: now,
                failures: 1,
            },
            Some(Transition::Down),
        ),
    }
}

/// How a [`Component`] was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComponentState {
    /// Not used yet since the start.
    #[default]
    Unknown,
    /// Answered; `since_ms`: since when without a failure.
    Ok { since_ms: i64 },
    /// Failed `failures` times in a row, the first at `since_ms`.
    Failing { since_ms: i64, failures: u64 },
}

static COMPONENTS: std::sync::Mutex<[ComponentState; 4]> = std::sync::Mutex::new([
    ComponentState::Unknown,
    ComponentState::Unknown,
    ComponentState::Unknown,
    ComponentState::Unknown,
]);

/// Records how `component` answered just now.
pub fn component_seen(component: Component, ok: bool) {
    let now = chrono::Utc::now().timestamp_millis();
    let mut states = COMPONENTS.lock().unwrap_or_else(|e| e.into_inner());
    let state = &mut states[component as usize];
    let (next, transition) = next_state(*state, ok, now);
    *state = next;
    drop(states);
    match transition {
        Some(Transition::Down) => {
            tracing::warn!(component = component.name(), "{} is down", component.name())
        }
        Some(Transition::Back(ms)) => tracing::warn!(
            component = component.name(),
            down_secs = ms / 1000,
            "{} is back after {:.1} s",
            component.name(),
            ms as f64 / 1000.0
        ),
        None => {}
    }
    if ok {
        PROBLEMS.lock().unwrap_or_else(|e| e.into_inner())[component as usize] = None;
    }
    let gauge = match component {
        Component::Directory => LDAP_UP,
        Component::Sink => SINK_UP,
        Component::Store => STORE_UP,
        // `tjid_imap_connected` is the IMAP source's own (a Maildir has no connection).
        Component::Mailbox => return,
    };
    metrics::gauge!(gauge).set(if ok { 1.0 } else { 0.0 });
}

static PROBLEMS: std::sync::Mutex<[Option<String>; 4]> =
    std::sync::Mutex::new([None, None, None, None]);

/// Why `component` fails, for `/readyz` (no personal data: a server's words about the
/// connection, a DN, a code). Kept until the component is next seen answering.
pub fn component_problem(component: Component, why: &str) {
    let mut problems = PROBLEMS.lock().unwrap_or_else(|e| e.into_inner());
    problems[component as usize] = Some(why.chars().take(300).collect());
}

/// The last problem noted for `component` while it fails.
pub fn component_problem_now(component: Component) -> Option<String> {
    match component_state(component) {
        ComponentState::Failing { .. } => {
            PROBLEMS.lock().unwrap_or_else(|e| e.into_inner())[component as usize].clone()
        }
        _ => None,
    }
}

/// How `component` was last seen.
pub fn component_state(component: Component) -> ComponentState {
    COMPONENTS.lock().unwrap_or_else(|e| e.into_inner())[component as usize]
}

/// For the IMAP source: whether its session is up.
pub fn set_imap_connected(connected: bool) {
    metrics::gauge!(IMAP_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}

/// For the IMAP source: whether this instance holds the folder's lease.
pub fn set_imap_lease_held(instance: &str, held: bool) {
    metrics::gauge!(IMAP_LEASE_HELD, "instance" => instance.to_string()).set(if held {
        1.0
    } else {
        0.0
    });
}

/// Installs the Prometheus recorder for this process (once; later calls get the same handle).
pub fn install_metrics() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let buckets = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(PROCESSING_SECONDS.into()), &buckets)?
        .install_recorder()?;
    describe_metrics();
    zero_series();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Every series of a closed label set exists from the start, at zero: a rate or an alert on
/// `outcome="quarantined"` works before the first quarantine.
fn zero_series() {
    use crate::case::{CaseKind, Decision, EmailOutcome, IgnoreReason, ReasonCode, WarningCode};
    let outcomes = EmailOutcome::ALL.iter().map(|o| o.as_str());
    for outcome in outcomes.chain(["replay"]) {
        metrics::counter!(EMAILS, "outcome" => outcome).increment(0);
    }
    for r in IgnoreReason::ALL {
        metrics::counter!(EMAILS_IGNORED, "reason" => r.as_str()).increment(0);
    }
    for k in CaseKind::ALL {
        for d in Decision::ALL {
            metrics::counter!(CASES, "kind" => k.as_str(), "decision" => d.as_str()).increment(0);
        }
    }
    for d in Decision::ALL {
        metrics::counter!(CASES_LOW_OCR, "decision" => d.as_str()).increment(0);
    }
    for c in ReasonCode::ALL {
        metrics::counter!(CASE_REASONS, "code" => c.as_str()).increment(0);
    }
    for c in WarningCode::ALL {
        metrics::counter!(CASE_WARNINGS, "code" => c.as_str()).increment(0);
    }
    for r in ["sent", "retry", "failed", "in_doubt"] {
        metrics::counter!(REPLY_DELIVERIES, "result" => r).increment(0);
    }
    for r in ["ok", "error", "cached"] {
        metrics::counter!(LDAP_LOOKUPS, "result" => r).increment(0);
    }
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        EMAILS,
        "Emails by outcome (processed, ignored, quarantined, replay)."
    );
    describe_counter!(EMAILS_IGNORED, "Ignored emails by reason.");
    describe_histogram!(
        WORKER_SECONDS,
        Unit::Seconds,
        "Time an attachment spent in its worker process."
    );
    describe_counter!(WORKER_STARTED, "Worker processes started.");
    describe_counter!(
        WORKER_KILLED,
        "Worker processes killed or lost while reading an attachment."
    );
    describe_counter!(CASES, "Cases by kind and decision.");
    describe_counter!(CASE_REASONS, "Rejection reasons by code.");
    describe_counter!(CASE_WARNINGS, "Warnings by code.");
    describe_histogram!(
        PROCESSING_SECONDS,
        Unit::Seconds,
        "Time from reading an email to its committed outcome."
    );
    describe_gauge!(OUTBOX_PENDING, "Replies waiting in the outbox.");
    describe_gauge!(OUTBOX_FAILED, "Replies that failed for good.");
    describe_gauge!(
        OUTBOX_HELD,
        "Replies held for staff: by the per-recipient rate limit, or in doubt."
    );
    describe_gauge!(
        OUTBOX_AWAITING,
        "Replies handed to the SMTP server whose answer is not recorded yet."
    );
    describe_counter!(REPLY_DELIVERIES, "Reply delivery attempts by result.");
    describe_gauge!(IMAP_CONNECTED, "1 while the IMAP session is up.");
    describe_gauge!(
        IMAP_LEASE_HELD,
        "1 while this instance holds the lease on the IMAP folder (reads it)."
    );
    describe_gauge!(
        LDAP_WAITING,
        "Emails waiting for KIV over LDAP to come back."
    );
    describe_gauge!(LDAP_UP, "1 when the last LDAP look-up succeeded.");
    describe_gauge!(
        SINK_UP,
        "1 when the last reply handed to the sink went through (or the server refused that reply alone), 0 when the sink could not be reached."
    );
    describe_gauge!(
        STORE_UP,
        "1 while the store answers the daemon's watch, 0 while it does not."
    );
    describe_counter!(LDAP_LOOKUPS, "LDAP look-ups by result (ok, error, cached).");
    describe_histogram!(
        OCR_PAGE_SECONDS,
        Unit::Seconds,
        "Time to recognise one scanned page (OCR), blank pages included."
    );
    describe_counter!(
        CASES_LOW_OCR,
        "Cases with a field read by OCR with low confidence, by decision."
    );
}

// `[log]`: the logging settings, owned here; `config` only gathers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `tjid_intake=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{next_state, ComponentState, Transition};

    #[test]
    fn going_down_and_coming_back_are_noted_once_each_with_the_time_gone() {
        let (s, t) = next_state(ComponentState::Unknown, true, 1_000);
        assert_eq!((s, t), (ComponentState::Ok { since_ms: 1_000 }, None));
        let (s, t) = next_state(s, false, 5_000);
        assert_eq!(t, Some(Transition::Down));
        let (s, t) = next_state(s, false, 7_000);
        assert_eq!(t, None, "a second failure is no news");
        assert_eq!(
            s,
            ComponentState::Failing {
                since_ms: 5_000,
                failures: 2
            }
        );
        let (s, t) = next_state(s, true, 25_000);
        assert_eq!(t, Some(Transition::Back(20_000)));
        assert_eq!(next_state(s, true, 26_000).1, None);
        // Failing from the start (a store down at start-up) is news too.
        assert_eq!(
            next_state(ComponentState::Unknown, false, 0).1,
            Some(Transition::Down)
        );
    }

    #[test]
    fn every_series_is_there_from_the_start_and_every_metric_has_help() {
        let handle = super::install_metrics().unwrap();
        let text = handle.render();
        for line in [
            r#"tjid_emails_total{outcome="quarantined"} 0"#,
            r#"tjid_emails_total{outcome="replay"} 0"#,
            r#"tjid_cases_total{kind="order",decision="rejected"} 0"#,
            r#"tjid_cases_low_ocr_confidence_total{decision="queued"} 0"#,
            r#"tjid_reply_deliveries_total{result="failed"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP line"
            );
        }
    }

    #[test]
    fn a_component_fails_from_its_first_failure_and_is_ok_from_its_first_answer() {
        use super::{component_seen, component_state, Component, ComponentState};
        // The directory only: other unit tests deliver replies (the sink).
        let c = Component::Directory;
        component_seen(c, false);
        let ComponentState::Failing { since_ms, failures } = component_state(c) else {
            panic!("{:?}", component_state(c))
        };
        component_seen(c, false);
        assert_eq!(
            component_state(c),
            ComponentState::Failing {
                since_ms,
                failures: failures + 1
            }
        );
        component_seen(c, true);
        let ComponentState::Ok { since_ms: ok_since } = component_state(c) else {
            panic!("{:?}", component_state(c))
        };
        component_seen(c, true);
        assert_eq!(
            component_state(c),
            ComponentState::Ok { since_ms: ok_since }
        );
    }
}
