//! The intake's settings (`[intake]`: its addresses and whom it trusts; `[limits]`: what it
//! reads of one email): owned by the pipeline, whose stages use them; gathered by `config`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IntakeSettings {
    /// The intake's own address: replies come from it, mail from it is ignored.
    pub own_address: String,
    /// Display name on replies.
    pub display_name: String,
    pub require_authenticated_sender: bool,
    /// Whose `Authentication-Results` header is trusted.
    pub authserv_id: String,
    /// Where providers reach a person (printed in replies).
    pub office_address: String,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            own_address: "tjansteid-intake@vgregion.se".into(),
            display_name: "TjänsteID-service".into(),
            require_authenticated_sender: false,
            authserv_id: "mx.vgregion.se".into(),
            office_address: "tjansteid@vgregion.se".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// A larger message is quarantined unread.
    pub max_message_bytes: usize,
    /// A larger attachment counts as unreadable.
    pub max_attachment_bytes: usize,
    pub max_pdf_pages: usize,
    pub max_attachments: usize,
    /// Wall-clock limit for reading one email's forms.
    pub processing_timeout_secs: u64,
    /// Address space of a worker process, in MiB (0: no limit).
    pub worker_memory_mb: u64,
    /// Processor time one attachment may take in its worker process.
    pub worker_cpu_secs: u64,
    /// A worker process is replaced after this many attachments.
    pub worker_recycle_after: usize,
    /// An email that the process died reading this many times is quarantined without being
    /// read again (0: never).
    pub max_unfinished_attempts: i64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 40 * 1024 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            max_pdf_pages: 50,
            max_attachments: 20,
            processing_timeout_secs: 300,
            worker_memory_mb: crate::pipeline::worker::DEFAULT_MEMORY_MB,
            worker_cpu_secs: 60,
            worker_recycle_after: 100,
            max_unfinished_attempts: crate::store::MAX_UNFINISHED_ATTEMPTS,
        }
    }
}

impl IntakeSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if crate::domain::Email::parse(&self.own_address).is_err() {
            p.push("intake.own_address: not a valid e-mail address".into());
        }
        if crate::domain::Email::parse(&self.office_address).is_err() {
            p.push("intake.office_address: not a valid e-mail address".into());
        }
        if self.authserv_id.trim().is_empty() && self.require_authenticated_sender {
            p.push(
                "intake.authserv_id: must be set when require_authenticated_sender is on".into(),
            );
        }
        p
    }
}

impl LimitSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_pdf_pages == 0 || self.max_attachments == 0 {
            p.push("limits: max_pdf_pages and max_attachments must be at least 1".into());
        }
        if self.worker_cpu_secs == 0 || self.worker_recycle_after == 0 {
            p.push("limits: worker_cpu_secs and worker_recycle_after must be at least 1".into());
        }
        if self.worker_memory_mb != 0 && self.worker_memory_mb < 256 {
            p.push("limits.worker_memory_mb: at least 256 (or 0: no limit)".into());
        }
        if self.max_unfinished_attempts < 0 {
            p.push("limits.max_unfinished_attempts: 0 (off) or more".into());
        }
        if self.processing_timeout_secs == 0 {
            p.push("limits.processing_timeout_secs: must be at least 1".into());
        }
        p
    }
}
