//! The engine: runs the pipeline stages over one email and records the outcome. `process`
//! and `run` both go through `Intake::process`, which reads emails in parallel (CPU work on
//! blocking threads) and records them one at a time: in input order for a batch, as each is
//! done for the daemon's endless stream.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::case::{CheckedCase, Decision, EmailOutcome, IgnoreReason, WarningCode};
use crate::directory::ldap::LdapSettings;
use crate::directory::{
    Directory, DirectoryError, DirectoryKind, DirectorySettings, KivLookup, KivSettings,
    LdapDirectory,
};
use crate::pdf::PdfLimits;
use crate::pipeline::check::CheckContext;
use crate::pipeline::decide::{
    check_forms, extract_forms, ignore_reason, sender_authenticated, ExtractedForms,
};
use crate::pipeline::extract::ExtractLimits;
use crate::pipeline::parse::{parse_mail, ParsedMail};
use crate::pipeline::reply::{build_reply, ReplySettings};
use crate::providers::ProviderRegister;
use crate::source::Input;
use crate::store::{MailRecord, Recorded, Store, WaitingMail};

/// What the intake is built from: its part of the settings, gathered by
/// `config::Settings::intake_parts` (the intake does not know the whole configuration).
#[derive(Debug, Clone)]
pub struct IntakeParts {
    pub intake: crate::pipeline::IntakeSettings,
    pub limits: crate::pipeline::LimitSettings,
    pub directory: DirectorySettings,
    pub kiv: KivSettings,
    pub ldap: LdapSettings,
    pub providers: crate::providers::ProviderSettings,
    pub ocr: crate::ocr::OcrSettings,
    /// Pages recognised at once in the whole process; 0: one per core.
    pub ocr_workers: usize,
    /// Address space of each external program, in MiB; 0: no limit.
    pub child_memory_mb: u64,
    pub originals: crate::originals::Originals,
}

/// Everything the pure stages need, loaded once.
pub struct Intake {
    pub parts: IntakeParts,
    directory: Directory,
    /// The register the checks read: the CSV at first, the store's once `set_providers` ran.
    providers: std::sync::RwLock<Arc<ProviderRegister>>,
    limits: ExtractLimits,
    originals: crate::originals::Originals,
    /// Held shared while an email is read, exclusively while a suspect is (an email that was
    /// being read when the process died): a suspect that kills the process again is then
    /// the only one blamed for it (see `analyse_input`).
    isolation: tokio::sync::RwLock<()>,
    /// Emails being read now, and readings started so far: whether a reading overlapped
    /// another's (see `analyse_input`).
    reading: std::sync::atomic::AtomicUsize,
    readings_started: std::sync::atomic::AtomicUsize,
}

/// The pipeline's verdict on one email, before it is recorded.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub mail: Option<ParsedMail>,
    pub ignored: Option<IgnoreReason>,
    pub cases: Vec<CheckedCase>,
    /// Set when the email is quarantined (unparseable, a panic, a time-out, too large).
    pub error: Option<String>,
    pub content_hash: String,
    pub elapsed: Duration,
}

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

/// An email whose KIV check could not run because the directory could not be reached. It is
/// neither recorded nor acknowledged: it stays at its source and is tried again.
#[derive(Debug, Clone)]
pub struct WaitingForKiv {
    pub display: String,
    pub source_ref: String,
    /// Why, without personal data.
    pub error: String,
}

/// How one email of a stream was settled.
pub enum Settled<'a> {
    /// Its outcome is committed: acknowledge it at its source.
    Recorded(&'a Outcome),
    /// KIV could not be reached: it stays at its source and is tried again later.
    Waiting(WaitingForKiv),
}

/// In which order analysed emails are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As given (`process` prints its lines in the order of its arguments).
    AsGiven,
    /// In arrival order, so that case numbers follow it, except that an email still being
    /// read after [`ORDER_PATIENCE`] (a scan) lets the later ones pass and is recorded when
    /// it is done: a slow scan holds up no other email's reply by more than that.
    Arrival,
}

/// How long a quick email waits for an earlier one still being read (see [`Order::Arrival`]).
/// A digital form is read in milliseconds, a scanned page in one to two seconds.
pub const ORDER_PATIENCE: Duration = Duration::from_millis(500);

/// One email's analysis as `Order::Arrival` hands it on: done within the patience, or still
/// running on its own task.
enum Timely<T> {
    Done(T),
    Late(tokio::task::JoinHandle<T>),
}

/// What one batch left undone.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Emails that wait for KIV (not recorded, `on_outcome` not called for them).
    pub waiting: Vec<WaitingForKiv>,
}

/// The costly stages' result: the email read, its forms found, not yet checked.
struct Prepared {
    analysis: Analysis,
    forms: Option<ExtractedForms>,
}

impl Intake {
    /// The KIV name (`ou`) of each unit HSA-id, `None` for one KIV does not know: the staff
    /// pages name units as KIV does, not as forms spell them.
    pub async fn unit_names(
        &self,
        hsa_ids: &[String],
    ) -> Result<Vec<Option<String>>, crate::directory::DirectoryError> {
        self.directory
            .run_check(|kiv| {
                hsa_ids
                    .iter()
                    .map(|id| kiv.unit_by_hsa_id(id).map(|u| u.name.clone()))
                    .collect()
            })
            .await
    }

    pub fn load(settings: IntakeParts) -> anyhow::Result<Intake> {
        let directory = match settings.directory.kind {
            DirectoryKind::Ldif => {
                let kiv = crate::directory::SnapshotFile::load(&settings.kiv.ldif)
                    .context("cannot load the KIV snapshot (kiv.ldif)")?;
                let stats = kiv.current().stats();
                tracing::info!(
                    persons = stats.persons,
                    units = stats.units,
                    skipped = stats.skipped,
                    "KIV snapshot loaded"
                );
                Directory::Snapshot(kiv)
            }
            DirectoryKind::Ldap => {
                let ldap = LdapDirectory::new(&settings.ldap)
                    .context("cannot set up KIV over LDAP ([ldap])")?;
                tracing::info!(url = %settings.ldap.url, "KIV is read over LDAP");
                Directory::Ldap(ldap)
            }
        };
        let providers = ProviderRegister::load(&settings.providers.csv)
            .context("cannot load the register of connected providers (providers.csv)")?;
        tracing::info!(
            providers = providers.len(),
            "register of connected providers loaded"
        );
        let limits = ExtractLimits {
            max_attachment_bytes: settings.limits.max_attachment_bytes,
            max_attachments: settings.limits.max_attachments,
            pdf: PdfLimits {
                max_bytes: settings.limits.max_attachment_bytes,
                max_pages: settings.limits.max_pdf_pages,
                ..PdfLimits::default()
            },
            ocr: settings.ocr.clone(),
        };
        if settings.ocr_workers > 0 {
            crate::ocr::set_workers(settings.ocr_workers);
        }
        crate::ocr::child::set_memory_limit_mb(settings.child_memory_mb);
        if settings.ocr.enabled && !crate::ocr::available(&settings.ocr.lang) {
            // Not fatal: digital forms are still read. Emails with scans are quarantined until
            // it is installed (staff process them again), and `tjid-intake check` reports it.
            tracing::error!(
                lang = %settings.ocr.lang,
                "tesseract or its language model is missing: scanned forms cannot be read"
            );
        }
        Ok(Intake {
            originals: settings.originals.clone(),
            parts: settings,
            directory,
            providers: std::sync::RwLock::new(Arc::new(providers)),
            limits,
            isolation: tokio::sync::RwLock::new(()),
            reading: std::sync::atomic::AtomicUsize::new(0),
            readings_started: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The register of connected providers the checks read now.
    pub fn providers(&self) -> Arc<ProviderRegister> {
        Arc::clone(&self.providers.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the register the checks read (the store's, read again after a change).
    pub fn set_providers(&self, register: ProviderRegister) {
        *self.providers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(register);
    }

    /// Checks one form again against KIV and the register the intake uses (staff verifying a
    /// held case, SPEC §4.4). Fails only when KIV cannot be reached.
    pub async fn recheck(
        &self,
        form: &crate::forms::layout::RawForm,
        attachment: Option<&str>,
        email_date: NaiveDate,
        sender: Option<&str>,
        sender_authenticated: bool,
    ) -> Result<CheckedCase, DirectoryError> {
        self.run_checks(email_date, sender, sender_authenticated, |ctx| {
            crate::pipeline::check::check_form(form, attachment, ctx)
        })
        .await
    }

    /// Runs `check` with this intake's KIV (fetching what it asks for, over LDAP) and register.
    async fn run_checks<T>(
        &self,
        email_date: NaiveDate,
        sender: Option<&str>,
        sender_authenticated: bool,
        check: impl Fn(&CheckContext<'_>) -> T,
    ) -> Result<T, DirectoryError> {
        let providers = self.providers();
        self.directory
            .run_check(|kiv: &dyn KivLookup| {
                check(&CheckContext {
                    kiv,
                    providers: &providers,
                    email_date,
                    sender,
                    sender_authenticated,
                })
            })
            .await
    }

    /// Whether the sender of `mail` passes `require_authenticated_sender` (true when it is off).
    pub fn sender_passes(&self, mail: &ParsedMail) -> bool {
        let intake = &self.parts.intake;
        !intake.require_authenticated_sender || sender_authenticated(mail, &intake.authserv_id)
    }

    /// Runs parse → extract → check → decide on one email. Never panics: a panic inside the
    /// stages quarantines the email. Fails only when KIV cannot be reached: the email must
    /// then wait, not be decided.
    pub async fn analyse(&self, raw: &[u8], today: NaiveDate) -> Result<Analysis, DirectoryError> {
        let started = Instant::now();
        let prepared = self.prepare(raw);
        self.complete(prepared, today, started).await
    }

    /// Parse, ignore and extract: the CPU-bound part, run on a blocking thread.
    fn prepare(&self, raw: &[u8]) -> Prepared {
        let started = Instant::now();
        let content_hash = hex::encode(Sha256::digest(raw));
        let mut analysis = Analysis {
            mail: None,
            ignored: None,
            cases: Vec::new(),
            error: None,
            content_hash,
            elapsed: Duration::ZERO,
        };
        if raw.len() > self.parts.limits.max_message_bytes {
            analysis.error = Some(format!(
                "the message is larger than {} bytes",
                self.parts.limits.max_message_bytes
            ));
            return Prepared {
                analysis,
                forms: None,
            };
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(
            || -> Result<_, crate::pipeline::parse::ParseError> {
                let mail = parse_mail(raw)?;
                // Test hook, compiled into debug builds only: proves a panic is contained.
                if cfg!(debug_assertions)
                    && std::env::var("TJID_DEBUG_PANIC_ON_SUBJECT").is_ok_and(|s| s == mail.subject)
                {
                    panic!("test panic requested by TJID_DEBUG_PANIC_ON_SUBJECT");
                }
                // Test hook, debug builds only: the process dies while reading this email (as an
                // allocation failure under a memory limit aborts it).
                if cfg!(debug_assertions)
                    && std::env::var("TJID_DEBUG_ABORT_ON_SUBJECT").is_ok_and(|s| s == mail.subject)
                {
                    std::process::abort();
                }
                if let Some(reason) = ignore_reason(&mail, &self.parts.intake.own_address) {
                    return Ok((mail, Some(reason), None));
                }
                let forms = extract_forms(&mail, &self.limits);
                Ok((mail, None, Some(forms)))
            },
        ));
        let mut forms = None;
        match result {
            Ok(Ok((mail, _, Some(extracted)))) if extracted.ocr_unavailable => {
                // Answering "unreadable" would blame the sender for our missing Tesseract: the
                // email is quarantined, and staff process it again once OCR is installed.
                analysis.mail = Some(mail);
                analysis.error = Some(
                    "a scan needs text recognition and tesseract (Swedish) is not installed here; process the email again once it is".into(),
                );
            }
            Ok(Ok((mail, ignored, extracted))) => {
                analysis.mail = Some(mail);
                analysis.ignored = ignored;
                forms = extracted;
            }
            Ok(Err(e)) => analysis.error = Some(e.to_string()),
            Err(_) => {
                analysis.error = Some("processing the email failed unexpectedly (a panic)".into())
            }
        }
        analysis.elapsed = started.elapsed();
        Prepared { analysis, forms }
    }

    /// [`Intake::prepare`] on a blocking thread, under the email's time limit. The deadline
    /// also stops the work: external programs are killed and no further page is read once it
    /// passes (src/ocr/child.rs), so a time-out frees the worker.
    async fn prepare_in_time(self: Arc<Self>, raw: &Arc<Vec<u8>>, timeout: Duration) -> Prepared {
        let task_raw = Arc::clone(raw);
        let deadline = Instant::now() + timeout;
        let task = tokio::task::spawn_blocking(move || {
            crate::ocr::child::with_deadline(Some(deadline), || self.prepare(&task_raw))
        });
        let timed_out = || {
            quarantine(
                raw,
                format!("processing took longer than {} s", timeout.as_secs()),
            )
        };
        match tokio::time::timeout(timeout, task).await {
            // Work that the deadline cut short (a program killed, pages not read) may have
            // finished just before the timer fired: it is a time-out all the same.
            Ok(Ok(_)) if Instant::now() >= deadline => timed_out(),
            Ok(Ok(p)) => p,
            Ok(Err(_)) => quarantine(raw, "processing the email failed unexpectedly".into()),
            Err(_) => timed_out(),
        }
    }

    /// The checks against KIV and the register: cheap, but over LDAP they wait for answers.
    async fn complete(
        &self,
        prepared: Prepared,
        today: NaiveDate,
        started: Instant,
    ) -> Result<Analysis, DirectoryError> {
        let Prepared {
            mut analysis,
            forms,
        } = prepared;
        let (Some(mail), Some(forms)) = (analysis.mail.as_ref(), forms) else {
            analysis.elapsed = started.elapsed();
            return Ok(analysis);
        };
        let checked = self
            .run_checks(
                mail.email_date(today),
                mail.from.as_deref(),
                self.sender_passes(mail),
                |ctx| std::panic::catch_unwind(AssertUnwindSafe(|| check_forms(&forms, ctx))).ok(),
            )
            .await?;
        match checked {
            Some(cases) => analysis.cases = cases,
            None => {
                analysis.error = Some("processing the email failed unexpectedly (a panic)".into())
            }
        }
        analysis.elapsed = started.elapsed();
        Ok(analysis)
    }

    /// The settings of replies and notices.
    pub fn reply_settings(&self) -> ReplySettings<'_> {
        ReplySettings {
            own_address: &self.parts.intake.own_address,
            display_name: &self.parts.intake.display_name,
            office_address: &self.parts.intake.office_address,
        }
    }

    /// Analyses `inputs` in parallel and records them in `order`; `on_outcome` runs after
    /// each email's outcome is committed (the place to acknowledge it at its source). An email
    /// that waits for KIV is not recorded and `on_outcome` does not run for it: it must stay
    /// at its source. With a store, it is noted in `kiv_waiting` with its next try.
    pub async fn process_batch<F>(
        self: &Arc<Self>,
        inputs: Vec<Input>,
        order: Order,
        recorder: &Recorder,
        mut on_outcome: F,
    ) -> anyhow::Result<BatchReport>
    where
        F: FnMut(&Input, &Outcome) -> anyhow::Result<()>,
    {
        let mut report = BatchReport::default();
        self.process(
            futures::stream::iter(inputs),
            order,
            recorder,
            |input, settled| match settled {
                Settled::Recorded(outcome) => on_outcome(input, outcome),
                Settled::Waiting(waiting) => {
                    report.waiting.push(waiting);
                    Ok(())
                }
            },
        )
        .await?;
        Ok(report)
    }

    /// Like [`Self::process_batch`], for a source that never ends (the daemon): emails are
    /// recorded in arrival order, except that one still being read after [`ORDER_PATIENCE`]
    /// lets the later ones pass, so a 20-page scan does not hold up the mail that came after
    /// it. `on_settled` runs once per email: recorded, or waiting for KIV.
    pub async fn process_stream<S, F>(
        self: &Arc<Self>,
        inputs: S,
        recorder: &Recorder,
        on_settled: F,
    ) -> anyhow::Result<()>
    where
        S: futures::Stream<Item = Input> + Send + 'static,
        F: FnMut(&Input, Settled) -> anyhow::Result<()>,
    {
        self.process(inputs, Order::Arrival, recorder, on_settled)
            .await
    }

    async fn process<S, F>(
        self: &Arc<Self>,
        inputs: S,
        order: Order,
        recorder: &Recorder,
        mut on_settled: F,
    ) -> anyhow::Result<()>
    where
        S: futures::Stream<Item = Input> + Send + 'static,
        F: FnMut(&Input, Settled) -> anyhow::Result<()>,
    {
        // Analysis is CPU work on blocking threads; twice the cores keeps both busy while
        // one email waits for the store or for LDAP. OCR has its own pool (src/ocr).
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            * 2;
        let this = Arc::clone(self);
        let attempts = match recorder {
            Recorder::Store(store) => Some(store.clone()),
            Recorder::DryRun(_) => None,
        };
        let analysed = inputs.map(move |input| {
            let analysis = Arc::clone(&this).analyse_input(input, attempts.clone());
            async move {
                match order {
                    // On a task of its own too: its store calls (the attempt) must go on while
                    // the caller records another email over the store's one connection.
                    Order::AsGiven => Timely::Done(
                        tokio::spawn(analysis)
                            .await
                            .expect("the analysis task panicked"),
                    ),
                    Order::Arrival => {
                        let mut task = tokio::spawn(analysis);
                        match tokio::time::timeout(ORDER_PATIENCE, &mut task).await {
                            Ok(done) => Timely::Done(done.expect("the analysis task panicked")),
                            Err(_) => Timely::Late(task),
                        }
                    }
                }
            }
        });
        let mut analysed = analysed.buffered(workers).fuse().boxed();
        // Late emails, recorded as each is done; while `workers` of them run, no new one starts.
        let mut late = futures::stream::FuturesUnordered::new();
        let mut exhausted = false;
        loop {
            let next = tokio::select! {
                Some(done) = late.next(), if !late.is_empty() => {
                    let done: Result<_, tokio::task::JoinError> = done;
                    done.expect("the analysis task panicked")
                }
                timely = analysed.next(), if !exhausted && late.len() < workers => match timely {
                    Some(Timely::Done(done)) => done,
                    Some(Timely::Late(task)) => {
                        late.push(task);
                        continue;
                    }
                    None => {
                        exhausted = true;
                        continue;
                    }
                },
                else => break,
            };
            let (input, result, started) = next;
            match result {
                Ok(analysis) => {
                    if let Recorder::Store(_) = recorder {
                        // Mail that lives on a server (IMAP) is copied for the case page; the
                        // copy is written before the commit, so a committed case always has it.
                        if let Err(e) = self.originals.keep(&input.source_ref, &input.raw) {
                            tracing::warn!(error = %e, "cannot keep a copy of the email for the case page");
                        }
                    }
                    let outcome = self.record(&input, &analysis, recorder).await?;
                    end_attempt(&input, recorder).await;
                    log_outcome(&input, &analysis, &outcome);
                    count_outcome(&outcome, started);
                    on_settled(&input, Settled::Recorded(&outcome))?;
                }
                Err(error) => {
                    let waiting = WaitingForKiv {
                        display: input.display.clone(),
                        source_ref: input.source_ref.clone(),
                        error: error.to_string(),
                    };
                    self.note_waiting(&input, &waiting, recorder).await?;
                    end_attempt(&input, recorder).await;
                    on_settled(&input, Settled::Waiting(waiting))?;
                }
            }
        }
        // The LDAP wait queue's gauge is read from the store at each /metrics scrape (app/ops.rs).
        Ok(())
    }

    /// Reads one email on a blocking thread under the time limit (a panic or a time-out
    /// quarantines it), then checks it against KIV.
    ///
    /// With a store (`attempts`), the attempt is noted first and forgotten once the email is
    /// settled. An email with attempts that never finished (the process died meanwhile) is a
    /// suspect: it is read alone, with no other email in flight, so that dying again is its
    /// own doing; after `[limits] max_unfinished_attempts` (default 2) it is quarantined
    /// without being read.
    async fn analyse_input(
        self: Arc<Self>,
        input: Input,
        attempts: Option<Store>,
    ) -> (Input, Result<Analysis, DirectoryError>, Instant) {
        let timeout = Duration::from_secs(self.parts.limits.processing_timeout_secs);
        let started = Instant::now();
        let hash = hex::encode(Sha256::digest(&input.raw));
        let unfinished = match &attempts {
            Some(store) => match store.unfinished_attempts(&input.source_ref, &hash).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read earlier attempts of the email");
                    0
                }
            },
            None => 0,
        };
        let most = self.parts.limits.max_unfinished_attempts;
        if most > 0 && unfinished >= most {
            tracing::error!(
                source = %log_token(&input.source_ref),
                attempts = unfinished,
                "the service died while reading this email before; it is quarantined unread"
            );
            let prepared = quarantine(&input.raw, poison_error(unfinished));
            let result = self
                .complete(prepared, Utc::now().date_naive(), started)
                .await;
            return (input, result, started);
        }
        // A suspect waits for the emails in flight and holds the next ones back.
        let mut isolated = if unfinished > 0 {
            tracing::warn!(
                source = %log_token(&input.source_ref),
                attempts = unfinished,
                "the service died while this email was in flight; it is read again on its own"
            );
            Isolation::Alone(self.isolation.write().await)
        } else {
            Isolation::Shared(self.isolation.read().await)
        };
        if let Some(store) = &attempts {
            let now = Utc::now().timestamp_millis();
            if let Err(e) = store.begin_attempt(&input.source_ref, &hash, now).await {
                tracing::warn!(error = %e, "cannot note the attempt on the email");
            }
        }
        let raw = Arc::new(input.raw);
        use std::sync::atomic::Ordering::SeqCst;
        let number = self.readings_started.fetch_add(1, SeqCst) + 1;
        let others = self.reading.fetch_add(1, SeqCst);
        let mut prepared = Arc::clone(&self).prepare_in_time(&raw, timeout).await;
        self.reading.fetch_sub(1, SeqCst);
        let overlapped = others > 0 || self.readings_started.load(SeqCst) != number;
        // Processor time is counted, not the wall clock, but several emails read at once still
        // slow each other a little: a reading stopped for time while another was read is
        // repeated alone before the attachment is called unreadable, so the decision does not
        // depend on load (issue 20).
        if overlapped
            && matches!(isolated, Isolation::Shared(_))
            && prepared.forms.as_ref().is_some_and(|f| f.out_of_time)
        {
            tracing::warn!(
                source = %log_token(&input.source_ref),
                "an attachment ran out of time while other mail was read; it is read again alone"
            );
            drop(isolated);
            isolated = Isolation::Alone(self.isolation.write().await);
            prepared = Arc::clone(&self).prepare_in_time(&raw, timeout).await;
        }
        drop(isolated);
        let result = self
            .complete(prepared, Utc::now().date_naive(), started)
            .await;
        let raw = Arc::try_unwrap(raw).unwrap_or_else(|r| (*r).clone());
        (Input { raw, ..input }, result, started)
    }

    async fn note_waiting(
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

    async fn record(
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
        // A second open order for one person at one unit is flagged (SPEC §4.3); a dry run
        // has no orders to look at.
        let cases = match recorder {
            Recorder::Store(store) => flag_open_orders(store, &analysis.cases).await?,
            Recorder::DryRun(_) => std::borrow::Cow::Borrowed(analysis.cases.as_slice()),
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
                store.record(&record, &cases, &render, now_ms).await?
            }
            Recorder::DryRun(state) => {
                let mut state = state
                    .lock()
                    .map_err(|_| anyhow::anyhow!("dry-run state poisoned"))?;
                dry_run_record(&mut state, message_id.as_deref(), analysis, now_ms)
            }
        };
        let (decision, ignored_reason, case_ids, replay) = match &recorded {
            Recorded::AlreadyRecorded => (EmailOutcome::Processed, None, Vec::new(), true),
            Recorded::Ignored(r) => (EmailOutcome::Ignored, Some(*r), Vec::new(), false),
            Recorded::Quarantined => (EmailOutcome::Quarantined, None, Vec::new(), false),
            Recorded::Processed { case_ids } => {
                (EmailOutcome::Processed, None, case_ids.clone(), false)
            }
        };
        let cases = case_ids
            .into_iter()
            .zip(cases.iter())
            .map(|(case_id, c)| CaseOutcome {
                case_id,
                kind: c.kind,
                decision: c.decision,
                reasons: c.reasons.clone(),
                warnings: c.warnings.clone(),
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

/// `cases` with `open_order_exists` on each order whose person already has an open order at
/// the same unit (cloned only when one is flagged).
async fn flag_open_orders<'a>(
    store: &crate::store::Store,
    cases: &'a [CheckedCase],
) -> anyhow::Result<std::borrow::Cow<'a, [CheckedCase]>> {
    let mut out = std::borrow::Cow::Borrowed(cases);
    for (i, case) in cases.iter().enumerate() {
        if case.kind != crate::case::CaseKind::Order {
            continue;
        }
        let (Some(pnr), Some(unit)) = (
            case.fields.get("personnummer"),
            case.fields.get("vardenhet_hsaid"),
        ) else {
            continue;
        };
        let pnr12: String = pnr.chars().filter(char::is_ascii_digit).collect();
        if pnr12.len() != 12 || store.open_orders(&pnr12, unit).await?.is_empty() {
            continue;
        }
        out.to_mut()[i].warnings.push(crate::case::Finding::new(
            WarningCode::OpenOrderExists,
            Some("personnummer"),
        ));
    }
    Ok(out)
}

/// How a reader holds `Intake::isolation` (only ever dropped).
enum Isolation<'a> {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'a, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// The quarantine reason of an email that the service died on (`web::views` shows it in
/// Swedish; it matches on the start).
pub fn poison_error(attempts: i64) -> String {
    format!(
        "processing stopped before it finished, {attempts} times (the service died while reading this email); it is not read again"
    )
}

/// Forgets the attempt on a settled email (see `Intake::analyse_input`).
async fn end_attempt(input: &Input, recorder: &Recorder) {
    if let Recorder::Store(store) = recorder {
        if let Err(e) = store.end_attempt(&input.source_ref).await {
            tracing::warn!(error = %e, "cannot clear the attempt on a settled email");
        }
    }
}

fn quarantine(raw: &[u8], error: String) -> Prepared {
    let analysis = Analysis {
        mail: None,
        ignored: None,
        cases: Vec::new(),
        error: Some(error),
        content_hash: hex::encode(Sha256::digest(raw)),
        elapsed: Duration::ZERO,
    };
    Prepared {
        analysis,
        forms: None,
    }
}

/// Counts one committed outcome in the metrics.
fn count_outcome(outcome: &Outcome, started: Instant) {
    use crate::telemetry as t;
    let kind = if outcome.replay {
        "replay"
    } else {
        outcome.decision.as_str()
    };
    metrics::counter!(t::EMAILS, "outcome" => kind).increment(1);
    if let Some(reason) = outcome.ignored_reason {
        metrics::counter!(t::EMAILS_IGNORED, "reason" => reason.as_str()).increment(1);
    }
    for c in &outcome.cases {
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
    }
    metrics::histogram!(t::PROCESSING_SECONDS).record(started.elapsed().as_secs_f64());
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
    Recorded::Processed { case_ids }
}

/// A short, stable token for a value that must not be logged in clear (a Message-ID may
/// carry a name).
pub fn log_token(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..6])
}

fn log_outcome(input: &Input, analysis: &Analysis, outcome: &Outcome) {
    let msg = outcome
        .message_id
        .as_deref()
        .map(log_token)
        .unwrap_or_else(|| "-".into());
    let source = log_token(&input.source_ref);
    let ms = analysis.elapsed.as_secs_f64() * 1000.0;
    if outcome.replay {
        tracing::info!(msg = %msg, source = %source, "email already recorded before a restart; acknowledged");
        return;
    }
    match (outcome.decision, outcome.ignored_reason) {
        (EmailOutcome::Ignored, Some(reason)) => {
            tracing::info!(msg = %msg, source = %source, reason = %reason, "email ignored")
        }
        (EmailOutcome::Quarantined, _) => {
            tracing::warn!(msg = %msg, source = %source, error = outcome.error.as_deref().unwrap_or(""), "email quarantined")
        }
        _ => {
            tracing::info!(msg = %msg, source = %source, cases = outcome.cases.len(), elapsed_ms = format!("{ms:.1}"), "email processed");
            for c in &outcome.cases {
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
    }
}
