//! Stage 5: a decided case → the Swedish reply (SPEC §5), rendered from the template files
//! under `templates/` and built with lettre: threaded, `Auto-Submitted: auto-replied`, with the
//! case number and never the full personnummer.

use std::sync::LazyLock;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use minijinja::{context, Environment};

use crate::case::{CaseKind, CheckedCase, Decision};
use crate::forms::spec::FormKind;
use crate::pipeline::parse::ParsedMail;
use crate::store::RenderedReply;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    for (name, source) in [
        (
            "_header.txt.j2",
            include_str!("../../templates/_header.txt.j2"),
        ),
        (
            "_footer.txt.j2",
            include_str!("../../templates/_footer.txt.j2"),
        ),
        (
            "_reasons.txt.j2",
            include_str!("../../templates/_reasons.txt.j2"),
        ),
        (
            "queued.txt.j2",
            include_str!("../../templates/queued.txt.j2"),
        ),
        (
            "rejected.txt.j2",
            include_str!("../../templates/rejected.txt.j2"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the built-in reply templates are valid");
    }
    env
});

/// RFC 3834: marks our mail as automatic so that other robots do not answer it.
#[derive(Debug, Clone, Copy)]
pub struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// The case number on every reply, for mail clients and for linking bounces back.
#[derive(Debug, Clone)]
pub struct CaseHeader(pub String);

impl Header for CaseHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-TjanstID-Case")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(CaseHeader(s.trim().to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

pub struct ReplySettings<'a> {
    pub own_address: &'a str,
    pub display_name: &'a str,
    pub office_address: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("the email has no address to reply to")]
    NoRecipient,
    #[error("cannot render the reply template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("cannot build the reply message: {0}")]
    Build(String),
}

/// The text of the reply for one case.
pub fn render_text(
    case: &CheckedCase,
    case_id: &str,
    settings: &ReplySettings<'_>,
) -> Result<String, minijinja::Error> {
    let form_kind = match case.kind {
        CaseKind::Order => Some(FormKind::Order),
        CaseKind::Deregistration => Some(FormKind::Deregistration),
        CaseKind::Unknown => None,
    };
    let reasons: Vec<_> = case
        .reasons
        .iter()
        .map(|r| {
            let label = r
                .field
                .and_then(|f| form_kind.and_then(|k| k.field(f)))
                .map(|f| f.label);
            context! { code => r.code.as_str(), field => r.field, label => label }
        })
        .collect();
    let person = person_line(case);
    let pages = (!case.context.pages.is_empty()).then(|| {
        case.context
            .pages
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let template = match case.decision {
        Decision::Queued => "queued.txt.j2",
        Decision::Rejected => "rejected.txt.j2",
    };
    TEMPLATES.get_template(template)?.render(context! {
        kind => case.kind.as_str(),
        case_id => case_id,
        office_name => settings.display_name,
        office_address => settings.office_address,
        attachment => case.context.attachment,
        pages => pages,
        person => person,
        reasons => reasons,
        delivery => case.fields.get("utlamning"),
        pickup => case.fields.get("utlamningsstalle"),
    })
}

/// "Anna-Karin Åström, 19121212-XXXX": the name and the masked personnummer, when known.
fn person_line(case: &CheckedCase) -> Option<String> {
    let name = match case.kind {
        CaseKind::Order => {
            let parts: Vec<&str> = [case.fields.get("fornamn"), case.fields.get("efternamn")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        CaseKind::Deregistration => case.fields.get("namn").map(str::to_string),
        CaseKind::Unknown => None,
    };
    match (name, &case.context.personnummer_masked) {
        (Some(n), Some(p)) => Some(format!("{n}, {p}")),
        (Some(n), None) => Some(n),
        (None, Some(p)) => Some(p.clone()),
        (None, None) => None,
    }
}

/// Builds the reply message. `message_id` is ours and stable, so a resend carries the same one.
pub fn build_reply(
    mail: &ParsedMail,
    case: &CheckedCase,
    case_id: &str,
    message_id: &str,
    settings: &ReplySettings<'_>,
) -> Result<RenderedReply, ReplyError> {
    let recipient = mail.reply_to.clone().ok_or(ReplyError::NoRecipient)?;
    let to: Mailbox = recipient.parse().map_err(|_| ReplyError::NoRecipient)?;
    let from = Mailbox::new(
        Some(settings.display_name.to_string()),
        settings
            .own_address
            .parse()
            .map_err(|e| ReplyError::Build(format!("own address: {e}")))?,
    );
    let subject = format!("Re: {}", mail.subject);
    let text = render_text(case, case_id, settings)?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject.clone())
        .message_id(Some(message_id.to_string()))
        .header(AutoSubmitted)
        .header(CaseHeader(case_id.to_string()));
    if let Some(id) = &mail.message_id {
        builder = builder.in_reply_to(id.clone());
    }
    if !mail.references.is_empty() {
        builder = builder.references(mail.references.join(" "));
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| ReplyError::Build(e.to_string()))?;
    Ok(RenderedReply {
        message_id: message_id.to_string(),
        sender: settings.own_address.to_string(),
        recipient,
        subject,
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{CaseContext, Fields, Finding, ReasonCode};

    const SETTINGS: ReplySettings<'static> = ReplySettings {
        own_address: "tjansteid-intake@vgregion.se",
        display_name: "TjänsteID-service",
        office_address: "tjansteid@vgregion.se",
    };

    fn order_case(reasons: Vec<Finding<ReasonCode>>) -> CheckedCase {
        let context = CaseContext {
            personnummer_masked: Some("19121212-XXXX".into()),
            ..CaseContext::default()
        };
        let fields = Fields(vec![
            ("fornamn", Some("Anna-Karin".into())),
            ("efternamn", Some("Åström".into())),
        ]);
        CheckedCase::new(CaseKind::Order, reasons, Vec::new(), fields, context)
    }

    #[test]
    fn every_reason_has_its_own_swedish_sentence_naming_the_field() {
        let mut seen = std::collections::HashSet::new();
        for code in ReasonCode::ALL {
            let field = match code {
                ReasonCode::MissingField | ReasonCode::InvalidField => Some("vardenhet_hsaid"),
                ReasonCode::PersonNotInKiv | ReasonCode::PersonNotAtUnit => Some("personnummer"),
                ReasonCode::UnitNotInKiv => Some("vardenhet_hsaid"),
                ReasonCode::ProviderNotConnected => Some("vardgivare_orgnr"),
                ReasonCode::CutCardNotConfirmed => Some("klippt_kort"),
                ReasonCode::SignatureMissing => Some("underskrift"),
                _ => None,
            };
            let text = render_text(
                &order_case(vec![Finding::new(*code, field)]),
                "TJID-2026-000001",
                &SETTINGS,
            )
            .unwrap();
            let reason_line = text
                .lines()
                .find(|l| l.starts_with("- "))
                .unwrap_or_else(|| panic!("{code}: {text}"))
                .to_string();
            assert!(
                !reason_line.contains(code.as_str()),
                "{code} has no sentence: {reason_line}"
            );
            assert!(
                seen.insert(reason_line.clone()),
                "{code} shares its sentence"
            );
            if matches!(code, ReasonCode::MissingField | ReasonCode::InvalidField) {
                assert!(
                    reason_line.contains("”Vårdenhetens HSA-id”"),
                    "{reason_line}"
                );
            }
        }
        let all = render_text(
            &order_case(vec![
                Finding::new(ReasonCode::ProviderNotConnected, Some("vardgivare_orgnr")),
                Finding::new(ReasonCode::PersonNotInKiv, Some("personnummer")),
            ]),
            "TJID-2026-000001",
            &SETTINGS,
        )
        .unwrap();
        assert!(all.contains("hälso- och sjukvårdskansli"), "{all}");
        assert!(all.contains("Registrera först personen i KIV"), "{all}");
        assert!(all.contains("nytt e-postmeddelande"), "{all}");
        assert!(all.contains("Anna-Karin Åström, 19121212-XXXX"), "{all}");
    }

    #[test]
    fn replies_are_threaded_and_marked_automatic() {
        let raw = b"From: Anna <anna@example.se>\r\nReply-To: kansli@example.se\r\nSubject: Blankett\r\nMessage-ID: <orig@example.se>\r\nReferences: <first@example.se>\r\n\r\nHej\r\n";
        let mail = crate::pipeline::parse::parse_mail(raw).unwrap();
        let reply = build_reply(
            &mail,
            &order_case(vec![]),
            "TJID-2026-000007",
            "<r1@tjid-intake>",
            &SETTINGS,
        )
        .unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(&reply.raw)
            .unwrap();
        assert_eq!(reply.recipient, "kansli@example.se");
        assert_eq!(parsed.subject(), Some("Re: Blankett"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("orig@example.se"));
        assert_eq!(parsed.references().as_text_list().map(|l| l.len()), Some(2));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(parsed.message_id(), Some("r1@tjid-intake"));
        assert!(parsed.body_text(0).unwrap().contains("TJID-2026-000007"));
        assert!(!String::from_utf8_lossy(&reply.raw).contains("1212-1212"));
    }
}
