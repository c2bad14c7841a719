//! The engine: runs the pipeline stages over one email. `Intake::prepare` reads it (parse,
//! ignore, extract: CPU work, run on a blocking thread under the email's time limit) and
//! `Intake::complete` checks it against KIV and the register. `flow` runs many emails at once
//! and `record` writes each outcome.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::case::{CheckedCase, IgnoreReason};
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
use crate::pipeline::reply::ReplySettings;
use crate::providers::ProviderRegister;

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
    pub(super) directory: Directory,
    /// The register the checks read: the CSV at first, the store's once `set_providers` ran.
    pub(super) providers: std::sync::RwLock<Arc<ProviderRegister>>,
    pub(super) limits: ExtractLimits,
    pub(super) originals: crate::originals::Originals,
    /// Held shared while an email is read, exclusively while a suspect is (an email that was
    /// being read when the process died): a suspect that kills the process again is then
    /// the only one blamed for it (see `analyse_input`).
    pub(super) isolation: tokio::sync::RwLock<()>,
    /// Emails being read now, and readings started so far: whether a reading overlapped
    /// another's (see `analyse_input`).
    pub(super) reading: std::sync::atomic::AtomicUsize,
    pub(super) readings_started: std::sync::atomic::AtomicUsize,
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

/// The costly stages' result: the email read, its forms found, not yet checked.
pub(super) struct Prepared {
    pub(super) analysis: Analysis,
    pub(super) forms: Option<ExtractedForms>,
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
    pub(super) async fn prepare_in_time(
        self: Arc<Self>,
        raw: &Arc<Vec<u8>>,
        timeout: Duration,
    ) -> Prepared {
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
    pub(super) async fn complete(
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
}

/// The quarantine reason of an email that the service died on (`web::views` shows it in
/// Swedish; it matches on the start).
pub fn poison_error(attempts: i64) -> String {
    format!(
        "processing stopped before it finished, {attempts} times (the service died while reading this email); it is not read again"
    )
}

pub(super) fn quarantine(raw: &[u8], error: String) -> Prepared {
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

/// A short, stable token for a value that must not be logged in clear (a Message-ID may
/// carry a name).
pub fn log_token(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..6])
}
