//! Stage 4: the whole email → ignored (SPEC §4.1) or its cases (§4): one per form, in
//! attachment order then page order; one `unknown` case when there is no form.

use chrono::NaiveDate;

use crate::case::{CaseContext, CaseKind, CheckedCase, Fields, Finding, IgnoreReason, ReasonCode};
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

pub struct DecideContext<'a> {
    pub check: CheckContext<'a>,
    pub limits: &'a ExtractLimits,
}

/// Builds the cases of an email that is not ignored.
pub fn decide_cases(mail: &ParsedMail, ctx: &DecideContext<'_>) -> Vec<CheckedCase> {
    let mut cases = Vec::new();
    let mut unreadable = false;
    if mail.attachments.len() > ctx.limits.max_attachments {
        tracing::warn!(
            attachments = mail.attachments.len(),
            limit = ctx.limits.max_attachments,
            "only the first attachments are read"
        );
    }
    for att in mail.attachments.iter().take(ctx.limits.max_attachments) {
        match read_attachment(att, ctx.limits) {
            AttachmentRead::Forms(forms) => {
                for form in &forms {
                    cases.push(check_form(form, att.name.as_deref(), &ctx.check));
                }
            }
            AttachmentRead::Unreadable(why) => {
                tracing::info!(attachment_type = %att.content_type, reason = %why, "attachment unreadable");
                unreadable = true;
            }
            AttachmentRead::NoForm => {}
        }
    }
    if !cases.is_empty() {
        return cases;
    }
    let body = read_body(&mail.body_text);
    if let BodyRead::Notice(form) = &body {
        return vec![check_form(form, None, &ctx.check)];
    }
    let code = if unreadable {
        ReasonCode::UnreadableAttachment
    } else if body == BodyRead::Order {
        ReasonCode::SignedFormRequired
    } else {
        ReasonCode::NoFormFound
    };
    let mut reasons = vec![Finding::new(code, None)];
    if !ctx.check.sender_authenticated {
        reasons.push(Finding::new(ReasonCode::UnauthenticatedSender, None));
    }
    vec![CheckedCase::new(
        CaseKind::Unknown,
        reasons,
        Vec::new(),
        Fields::default(),
        CaseContext::default(),
    )]
}

/// The email's date for the date and century rules: its `Date` header, else today.
pub fn email_date(mail: &ParsedMail, today: NaiveDate) -> NaiveDate {
    mail.email_date(today)
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
