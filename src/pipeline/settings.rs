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
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 40 * 1024 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            max_pdf_pages: 50,
            max_attachments: 20,
            processing_timeout_secs: 300,
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
        if self.processing_timeout_secs == 0 {
            p.push("limits.processing_timeout_secs: must be at least 1".into());
        }
        p
    }
}
