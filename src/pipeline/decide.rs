//! Stage 4: the whole email → ignored (SPEC §4.1) or its cases (§4): one per form, in
//! attachment order then page order; one `unknown` case when there is no form.

use crate::case::{CaseContext, CaseKind, CheckedCase, Fields, Finding, IgnoreReason, ReasonCode};
use crate::forms::layout::RawForm;
use crate::pipeline::check::{check_form, CheckContext};
use crate::pipeline::extract::{
    read_attachment, read_body, AttachmentRead, BodyRead, ExtractLimits,
};
use crate::pipeline::parse::ParsedMail;

/// What the email is, apart from `duplicate`, which needs the store.
pub fn ignore_reason(mail: &ParsedMail, own_address: &str) -> Option<IgnoreReason> {
    let from = mail.from.as_deref().unwrap_or("");
    if !from.is_empty() && from.eq_ignore_ascii_case(own_address.trim()) {
        return Some(IgnoreReason::OwnMail);
    }
    let local = from.split('@').next().unwrap_or("");
    if mail.is_report
        || local.eq_ignore_ascii_case("mailer-daemon")
        || local.eq_ignore_ascii_case("postmaster")
        || mail.return_path.as_deref() == Some("")
    {
        return Some(IgnoreReason::Bounce);
    }
    if is_auto_reply(mail) {
        return Some(IgnoreReason::AutoReply);
    }
    None
}

fn is_auto_reply(mail: &ParsedMail) -> bool {
    if let Some(v) = &mail.auto_submitted {
        let token = v.split(';').next().unwrap_or("").trim();
        if !token.eq_ignore_ascii_case("no") {
            return true;
        }
    }
    if mail.has_autoreply_header || mail.has_list_id {
        return true;
    }
    if matches!(mail.precedence.as_deref(), Some("bulk" | "junk" | "list")) {
        return true;
    }
    let subject = mail.subject.to_lowercase();
    subject.starts_with("autosvar")
        || subject.contains("frånvaro")
        || subject.contains("franvaro")
        || subject.contains("out of office")
        || subject.contains("automatic reply")
}

/// Whether the topmost `Authentication-Results` of `authserv_id` shows `dmarc=pass`.
pub fn sender_authenticated(mail: &ParsedMail, authserv_id: &str) -> bool {
    let trusted = mail.authentication_results.iter().find(|v| {
        let id = v
            .split(';')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        id.eq_ignore_ascii_case(authserv_id.trim())
    });
    let Some(header) = trusted else { return false };
    header.split(';').skip(1).any(|method| {
        let mut words = method.split_whitespace();
        words
            .next()
            .is_some_and(|r| r.eq_ignore_ascii_case("dmarc=pass"))
    })
}

/// The forms of an email, read but not yet checked. Reading is the costly part (PDF, OCR);
/// checking is cheap, so a directory that must first fetch what the checks need (LDAP) can
/// check the same forms more than once.
#[derive(Debug, Clone)]
pub struct ExtractedForms {
    /// Each form with the attachment it came from (`None`: the body).
    pub forms: Vec<(RawForm, Option<FormSource>)>,
    /// When there is no form: why not.
    pub no_form: ReasonCode,
    /// A scan could not be read because Tesseract is missing here: the email is not decided.
    pub ocr_unavailable: bool,
    /// An attachment's reading was stopped for time ([`AttachmentRead::OutOfTime`]); it counts
    /// as unreadable unless the email is read again alone (`intake`).
    pub out_of_time: bool,
    /// A scan was read by OCR and no form found in it: `no_form_found` then rests on that
    /// reading and is held for staff (SPEC §4.4).
    pub scan_without_form: bool,
}

/// The attachment a form was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSource {
    pub name: Option<String>,
    /// Position in `ParsedMail::attachments`.
    pub index: usize,
}

/// Reads every form of an email that is not ignored.
pub fn extract_forms(mail: &ParsedMail, limits: &ExtractLimits) -> ExtractedForms {
    let mut forms = Vec::new();
    let mut unreadable = false;
    let mut ocr_unavailable = false;
    let mut out_of_time = false;
    let mut scan_without_form = false;
    if mail.attachments.len() > limits.max_attachments {
        tracing::warn!(
            attachments = mail.attachments.len(),
            limit = limits.max_attachments,
            "only the first attachments are read"
        );
    }
    for (index, att) in mail
        .attachments
        .iter()
        .enumerate()
        .take(limits.max_attachments)
    {
        if crate::ocr::child::past_deadline() {
            // The email's time is up: it is quarantined, so the rest need not be read.
            break;
        }
        match read_attachment(att, limits) {
            AttachmentRead::Forms(found) => forms.extend(found.into_iter().map(|f| {
                let source = FormSource {
                    name: att.name.clone(),
                    index,
                };
                (f, Some(source))
            })),
            AttachmentRead::Unreadable(why) => {
                tracing::info!(attachment_type = %att.content_type, reason = %why, "attachment unreadable");
                unreadable = true;
            }
            AttachmentRead::OutOfTime(why) => {
                tracing::info!(attachment_type = %att.content_type, reason = %why, "attachment stopped for time");
                unreadable = true;
                out_of_time = true;
            }
            AttachmentRead::NoForm => {}
            AttachmentRead::ScanNoForm => scan_without_form = true,
            AttachmentRead::OcrUnavailable => ocr_unavailable = true,
        }
    }
    if !forms.is_empty() {
        return ExtractedForms {
            forms,
            no_form: ReasonCode::NoFormFound,
            ocr_unavailable,
            out_of_time,
            scan_without_form,
        };
    }
    let body = read_body(&mail.body_text);
    let no_form = if unreadable {
        ReasonCode::UnreadableAttachment
    } else if body == BodyRead::Order {
        ReasonCode::SignedFormRequired
    } else {
        ReasonCode::NoFormFound
    };
    if let BodyRead::Notice(form) = body {
        forms.push((form, None));
    }
    ExtractedForms {
        forms,
        no_form,
        ocr_unavailable,
        out_of_time,
        scan_without_form,
    }
}

/// Checks the forms read from an email: one case per form, or one `unknown` case.
pub fn check_forms(extracted: &ExtractedForms, ctx: &CheckContext<'_>) -> Vec<CheckedCase> {
    if !extracted.forms.is_empty() {
        return extracted
            .forms
            .iter()
            .map(|(form, source)| {
                let name = source.as_ref().and_then(|s| s.name.as_deref());
                let mut case = check_form(form, name, ctx);
                case.context.attachment_index = source.as_ref().map(|s| s.index);
                case
            })
            .collect();
    }
    let mut reasons = vec![Finding::new(extracted.no_form, None)];
    if !ctx.sender_authenticated {
        reasons.push(Finding::new(ReasonCode::UnauthenticatedSender, None));
    }
    let mut case = CheckedCase::new(
        CaseKind::Unknown,
        reasons,
        Vec::new(),
        Fields::default(),
        CaseContext::default(),
    );
    // OCR found no form in a scan, a photo or a fax: perhaps it missed it. Staff look first.
    if extracted.no_form == ReasonCode::NoFormFound && extracted.scan_without_form {
        case.verify = vec![None];
    }
    vec![case]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::parse_mail;

    fn mail(headers: &str) -> ParsedMail {
        parse_mail(format!("{headers}\r\n\r\nbody\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn ignore_codes_in_order() {
        let own = "tjansteid-intake@vgregion.se";
        assert_eq!(
            ignore_reason(
                &mail("From: Tjansteid-Intake@vgregion.se\r\nAuto-Submitted: auto-replied"),
                own
            ),
            Some(IgnoreReason::OwnMail)
        );
        assert_eq!(
            ignore_reason(&mail("From: MAILER-DAEMON@x.se"), own),
            Some(IgnoreReason::Bounce)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nReturn-Path: <>"), own),
            Some(IgnoreReason::Bounce)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nAuto-Submitted: auto-replied"), own),
            Some(IgnoreReason::AutoReply)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nAuto-Submitted: no"), own),
            None
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nPrecedence: bulk"), own),
            Some(IgnoreReason::AutoReply)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nList-Id: <l.x.se>"), own),
            Some(IgnoreReason::AutoReply)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nSubject: Autosvar: Beställning"), own),
            Some(IgnoreReason::AutoReply)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nSubject: Frånvaro v. 47"), own),
            Some(IgnoreReason::AutoReply)
        );
        assert_eq!(
            ignore_reason(&mail("From: a@x.se\r\nSubject: Beställning"), own),
            None
        );
    }

    #[test]
    fn only_the_topmost_trusted_authentication_results_counts() {
        let m = mail("From: a@x.se\r\nAuthentication-Results: evil.example; dmarc=pass\r\nAuthentication-Results: mx.vgregion.se; spf=pass; dmarc=fail (p=reject)\r\nAuthentication-Results: mx.vgregion.se; dmarc=pass");
        assert!(!sender_authenticated(&m, "mx.vgregion.se"));
        let m = mail("From: a@x.se\r\nAuthentication-Results: mx.vgregion.se 1; spf=pass smtp.mailfrom=x.se;\r\n dkim=pass; dmarc=pass header.from=x.se");
        assert!(sender_authenticated(&m, "mx.vgregion.se"));
        assert!(!sender_authenticated(
            &mail("From: a@x.se"),
            "mx.vgregion.se"
        ));
    }
}
