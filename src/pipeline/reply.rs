//! Stage 5: a decided case → the Swedish reply (SPEC §5), rendered from the template files
//! under `templates/` and built with lettre: threaded, `Auto-Submitted: auto-replied`, with the
//! case number and never the full personnummer.

use std::sync::LazyLock;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::Message;
use minijinja::{context, Environment};

use crate::case::RenderedReply;
use crate::case::{CaseKind, CheckedCase, Decision};
use crate::forms::spec::FormKind;
use crate::pipeline::parse::ParsedMail;

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

/// The longest subject of the original that a reply repeats, in characters (issue 20: a reply
/// must not echo attacker-sized input).
const SUBJECT_CHARS: usize = 200;
/// A Message-ID longer than this (with its `<>`) is not echoed in `In-Reply-To`/`References`.
const MESSAGE_ID_MAX: usize = 250;
/// The most a `References` value may hold: with `References: ` the line stays within RFC
/// 5322's 998 characters even where it cannot be folded.
const REFERENCES_MAX: usize = 980;
/// How many of the first IDs of the chain `References` keeps before the last ones (RFC 5322
/// §3.6.4: the first is the thread's root).
const REFERENCES_FIRST: usize = 1;

/// `<local@domain>` with the domain of `own_address` (a message of ours is named under the
/// office's domain): `message_id` is `<local>` or `<local@anything>`; its local part is kept.
pub fn message_id_under(message_id: &str, own_address: &str) -> String {
    let inner = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let local = inner.split_once('@').map_or(inner, |(l, _)| l);
    let domain = own_address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("<{local}@{domain}>")
}

/// The original's subject, at most `SUBJECT_CHARS` characters: cut at the last space before
/// the limit (or at the limit when a word is that long), with "…". Control characters (a
/// folded line's CR/LF that survived parsing) become spaces.
pub fn bounded_subject(subject: &str) -> String {
    let clean: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() <= SUBJECT_CHARS {
        return clean.to_string();
    }
    let head: String = clean.chars().take(SUBJECT_CHARS).collect();
    let cut = match head.rfind(char::is_whitespace) {
        Some(i) if i > 0 => head[..i].trim_end(),
        _ => head.as_str(),
    };
    format!("{cut}…")
}

/// A Message-ID fit to be echoed: `<local@domain>`, at most `MESSAGE_ID_MAX` characters,
/// printable ASCII with no space and no other `<`, `>` or `@`.
pub fn usable_message_id(id: &str) -> bool {
    let Some(inner) = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')) else {
        return false;
    };
    let Some((local, domain)) = inner.split_once('@') else {
        return false;
    };
    let fit = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\'))
    };
    id.len() <= MESSAGE_ID_MAX && fit(local) && fit(domain)
}

/// The `References` of a reply: the usable IDs of the original's chain (its own Message-ID
/// last), the first `REFERENCES_FIRST` and as many of the last as fit in `REFERENCES_MAX`.
pub fn bounded_references(chain: &[String]) -> Option<String> {
    let ids: Vec<&str> = chain
        .iter()
        .map(String::as_str)
        .filter(|id| usable_message_id(id))
        .collect();
    let first: Vec<&str> = ids.iter().take(REFERENCES_FIRST).copied().collect();
    let mut used: usize = first.iter().map(|id| id.len() + 1).sum();
    let mut last: Vec<&str> = Vec::new();
    for id in ids.iter().skip(first.len()).rev() {
        if used + id.len() + 1 > REFERENCES_MAX {
            break;
        }
        used += id.len() + 1;
        last.push(id);
    }
    last.reverse();
    let all: Vec<&str> = first.into_iter().chain(last).collect();
    (!all.is_empty()).then(|| all.join(" "))
}

/// Builds the reply message. `message_id` is ours and stable, so a resend carries the same one;
/// it is put under the domain of `own_address`.
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
    let subject = format!("Re: {}", bounded_subject(&mail.subject));
    let text = render_text(case, case_id, settings)?;
    let message_id = message_id_under(message_id, settings.own_address);
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject.clone())
        .message_id(Some(message_id.clone()))
        .header(AutoSubmitted)
        .header(CaseHeader(case_id.to_string()));
    if let Some(id) = mail
        .message_id
        .as_deref()
        .filter(|id| usable_message_id(id))
    {
        builder = builder.in_reply_to(id.to_string());
    }
    if let Some(references) = bounded_references(&mail.references) {
        builder = builder.references(references);
    }
    let message = builder
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| ReplyError::Build(e.to_string()))?;
    Ok(RenderedReply {
        message_id,
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
        assert_eq!(parsed.message_id(), Some("r1@vgregion.se"));
        assert_eq!(reply.message_id, "<r1@vgregion.se>");
        assert_eq!(
            parsed.header_raw("MIME-Version").map(str::trim),
            Some("1.0")
        );
        assert!(parsed.body_text(0).unwrap().contains("TJID-2026-000007"));
        assert!(!String::from_utf8_lossy(&reply.raw).contains("1212-1212"));
        // The Swedish text travels 7-bit (lettre encodes the body), so any relay takes it
        // without 8BITMIME, and no line is over SMTP's limit.
        assert!(reply.raw.is_ascii());
        assert!(parsed.body_text(0).unwrap().contains("ärende"));
        assert_lines_within_rfc5322(std::str::from_utf8(&reply.raw).unwrap());
    }

    fn reply_to(raw: &[u8]) -> (RenderedReply, String) {
        let mail = crate::pipeline::parse::parse_mail(raw).unwrap();
        let reply = build_reply(
            &mail,
            &order_case(vec![]),
            "TJID-2026-000007",
            "<tjid-2026-000007-1.abc@tjid-intake>",
            &SETTINGS,
        )
        .unwrap();
        let text = String::from_utf8(reply.raw.clone()).unwrap();
        (reply, text)
    }

    fn assert_lines_within_rfc5322(text: &str) {
        for line in text.split("\r\n") {
            assert!(line.len() <= 998, "a line of {} characters", line.len());
        }
    }

    #[test]
    fn an_attacker_sized_subject_is_cut_at_a_word() {
        let long = "Beställning ".repeat(10_000);
        let raw = format!(
            "From: a@example.se\r\nSubject: {long}\r\nMessage-ID: <m@example.se>\r\n\r\nHej\r\n"
        );
        let (reply, text) = reply_to(raw.as_bytes());
        assert_lines_within_rfc5322(&text);
        assert!(reply.subject.starts_with("Re: Beställning Beställning"));
        assert!(reply.subject.ends_with("Beställning…"), "{}", reply.subject);
        assert!(reply.subject.chars().count() <= 4 + 200 + 1);
        let parsed = mail_parser::MessageParser::default()
            .parse(&reply.raw)
            .unwrap();
        assert_eq!(parsed.subject(), Some(reply.subject.as_str()));
        // One word longer than the limit is cut inside it.
        assert_eq!(
            bounded_subject(&"x".repeat(500)),
            format!("{}…", "x".repeat(200))
        );
        assert_eq!(bounded_subject(" Blankett\r\n del 2 "), "Blankett   del 2");
        assert_eq!(bounded_subject(&"å".repeat(200)), "å".repeat(200));
    }

    #[test]
    fn over_long_or_malformed_message_ids_are_not_echoed() {
        let huge = format!("<{}@example.se>", "a".repeat(1_000_000));
        let raw = format!("From: a@example.se\r\nSubject: x\r\nMessage-ID: {huge}\r\nReferences: <root@example.se> <not an id> {huge}\r\n\r\nHej\r\n");
        let (_, text) = reply_to(raw.as_bytes());
        assert_lines_within_rfc5322(&text);
        assert!(text.len() < 10_000, "{} bytes", text.len());
        assert!(!text.contains("In-Reply-To"), "{text}");
        assert!(text.contains("<root@example.se>"), "{text}");
        for id in ["<a@b>", "<tjid-1.ab@vgregion.se>"] {
            assert!(usable_message_id(id), "{id}");
        }
        for id in [
            "a@b", "<ab>", "<@b>", "<a@>", "<a b@c>", "<a@b@c>", "<a<b@c>", "<å@b>",
        ] {
            assert!(!usable_message_id(id), "{id}");
        }
        assert!(!usable_message_id(&format!("<{}@b>", "a".repeat(250))));
    }

    #[test]
    fn a_long_thread_keeps_its_first_and_last_ids_within_998_characters() {
        let chain: Vec<String> = (0..200)
            .map(|i| format!("<message-number-{i:03}.{}@example.se>", "x".repeat(40)))
            .collect();
        let raw = format!(
            "From: a@example.se\r\nSubject: x\r\nMessage-ID: <last@example.se>\r\nReferences: {}\r\n\r\nHej\r\n",
            chain.join("\r\n ")
        );
        let (_, text) = reply_to(raw.as_bytes());
        assert_lines_within_rfc5322(&text);
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        let refs: Vec<String> = parsed
            .references()
            .as_text_list()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            refs.first().map(String::as_str),
            Some(&chain[0][1..chain[0].len() - 1])
        );
        assert_eq!(refs.last().map(String::as_str), Some("last@example.se"));
        assert!(refs.len() > 3 && refs.len() < 20, "{}", refs.len());
        let joined: usize = refs.iter().map(|r| r.len() + 3).sum();
        assert!(joined <= REFERENCES_MAX, "{joined}");
        assert_eq!(parsed.in_reply_to().as_text(), Some("last@example.se"));
    }

    #[test]
    fn our_message_ids_are_under_the_office_domain() {
        assert_eq!(
            message_id_under("<tjid-2026-000001-1.ab@tjid-intake>", "Intake@VGRegion.se"),
            "<tjid-2026-000001-1.ab@vgregion.se>"
        );
        assert_eq!(message_id_under("<x.y>", "a@b.se"), "<x.y@b.se>");
    }
}
