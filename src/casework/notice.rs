//! Later notices of a case's life (SPEC §5, routine §1.4–1.5): rejection overturned, order
//! placed at Telia, card ready, deregistration done. Same rules as the first reply: Swedish,
//! from the intake's address, `Auto-Submitted: auto-replied`, the case number, the personnummer
//! masked; rendered from template files under `templates/`.

use std::sync::LazyLock;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;
use minijinja::{context, Environment};

use crate::case::RenderedReply;
use crate::pipeline::reply::{AutoSubmitted, CaseHeader, ReplyError, ReplySettings};

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
            "notice_overturned.txt.j2",
            include_str!("../../templates/notice_overturned.txt.j2"),
        ),
        (
            "notice_ordered.txt.j2",
            include_str!("../../templates/notice_ordered.txt.j2"),
        ),
        (
            "notice_card_ready.txt.j2",
            include_str!("../../templates/notice_card_ready.txt.j2"),
        ),
        (
            "notice_deregistered.txt.j2",
            include_str!("../../templates/notice_deregistered.txt.j2"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the built-in notice templates are valid");
    }
    env
});

/// Which notice to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// To the sender: the rejection was overturned by staff.
    Overturned,
    /// To the verksamhetschef: the order is placed at Telia.
    OrderedAtTelia,
    /// To the verksamhetschef: the card can be picked up (or is being delivered).
    CardReady,
    /// To the verksamhetschef: the card is deregistered.
    DeregisteredManager,
    /// To the holder's KIV address: the card is deregistered.
    DeregisteredHolder,
}

impl NoticeKind {
    fn template(self) -> &'static str {
        match self {
            NoticeKind::Overturned => "notice_overturned.txt.j2",
            NoticeKind::OrderedAtTelia => "notice_ordered.txt.j2",
            NoticeKind::CardReady => "notice_card_ready.txt.j2",
            NoticeKind::DeregisteredManager | NoticeKind::DeregisteredHolder => {
                "notice_deregistered.txt.j2"
            }
        }
    }
}

/// What a notice says about its case; personal values are already masked.
#[derive(Debug, Clone, Default)]
pub struct NoticeFacts {
    pub case_id: String,
    pub kind: String,
    /// "Anna-Karin Åström, 19121212-XXXX".
    pub person: Option<String>,
    pub delivery: Option<String>,
    pub pickup: Option<String>,
    /// The last four digits of the card number.
    pub card_tail: Option<String>,
    /// The original email, for threading a notice to its sender.
    pub original_subject: String,
    pub original_message_id: Option<String>,
}

pub fn render_notice_text(
    kind: NoticeKind,
    facts: &NoticeFacts,
    settings: &ReplySettings<'_>,
) -> Result<String, minijinja::Error> {
    let audience = match kind {
        NoticeKind::DeregisteredHolder => "holder",
        NoticeKind::Overturned => "sender",
        _ => "manager",
    };
    TEMPLATES.get_template(kind.template())?.render(context! {
        kind => facts.kind,
        case_id => facts.case_id,
        office_name => settings.display_name,
        office_address => settings.office_address,
        person => facts.person,
        delivery => facts.delivery,
        pickup => facts.pickup,
        card => facts.card_tail,
        audience => audience,
    })
}

fn subject(kind: NoticeKind, facts: &NoticeFacts) -> String {
    let id = &facts.case_id;
    match kind {
        NoticeKind::Overturned => {
            if facts.original_subject.trim().is_empty() {
                format!("Ärendet är godkänt ({id})")
            } else {
                format!(
                    "Re: {}",
                    crate::pipeline::reply::bounded_subject(&facts.original_subject)
                )
            }
        }
        NoticeKind::OrderedAtTelia => {
            format!("Beställningen av eTjänstekort är lagd hos Telia ({id})")
        }
        NoticeKind::CardReady => {
            if facts.delivery.as_deref() == Some("Utkorning") {
                format!("eTjänstekortet är klart för utkörning ({id})")
            } else {
                format!("eTjänstekortet är klart att hämta ({id})")
            }
        }
        NoticeKind::DeregisteredManager | NoticeKind::DeregisteredHolder => {
            format!("eTjänstekortet är avregistrerat ({id})")
        }
    }
}

/// Builds one notice to `recipient`. The Message-ID is new and unique to this notice.
pub fn build_notice(
    kind: NoticeKind,
    facts: &NoticeFacts,
    recipient: &str,
    settings: &ReplySettings<'_>,
) -> Result<RenderedReply, ReplyError> {
    let to: Mailbox = recipient.parse().map_err(|_| ReplyError::NoRecipient)?;
    let from = Mailbox::new(
        Some(settings.display_name.to_string()),
        settings
            .own_address
            .parse()
            .map_err(|e| ReplyError::Build(format!("own address: {e}")))?,
    );
    let message_id = crate::pipeline::reply::message_id_under(
        &format!(
            "<{}.{}>",
            facts.case_id.to_lowercase(),
            uuid::Uuid::new_v4().simple()
        ),
        settings.own_address,
    );
    let subject = subject(kind, facts);
    let text = render_notice_text(kind, facts, settings)?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject.clone())
        .message_id(Some(message_id.clone()))
        .header(AutoSubmitted)
        .header(CaseHeader(facts.case_id.clone()));
    // Only the notice to the original sender continues the thread they started.
    if kind == NoticeKind::Overturned {
        if let Some(id) = facts
            .original_message_id
            .as_deref()
            .filter(|id| crate::pipeline::reply::usable_message_id(id))
        {
            builder = builder
                .in_reply_to(id.to_string())
                .references(id.to_string());
        }
    }
    let message = builder
        .header(lettre::message::header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| ReplyError::Build(e.to_string()))?;
    Ok(RenderedReply {
        message_id,
        sender: settings.own_address.to_string(),
        recipient: recipient.to_string(),
        subject,
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: ReplySettings<'static> = ReplySettings {
        own_address: "tjansteid-intake@vgregion.se",
        display_name: "TjänsteID-service",
        office_address: "tjansteid@vgregion.se",
    };

    fn facts() -> NoticeFacts {
        NoticeFacts {
            case_id: "TJID-2026-000042".into(),
            kind: "order".into(),
            person: Some("Anna-Karin Åström, 19121212-XXXX".into()),
            delivery: Some("Utlamningsstalle".into()),
            pickup: Some("Sahlgrenska, entré 3".into()),
            card_tail: Some("1234".into()),
            original_subject: "Beställning".into(),
            original_message_id: Some("<orig@example.se>".into()),
        }
    }

    #[test]
    fn every_notice_is_swedish_automatic_and_carries_the_case_number() {
        for kind in [
            NoticeKind::Overturned,
            NoticeKind::OrderedAtTelia,
            NoticeKind::CardReady,
            NoticeKind::DeregisteredManager,
            NoticeKind::DeregisteredHolder,
        ] {
            let n = build_notice(kind, &facts(), "vc@example.se", &SETTINGS).unwrap();
            let parsed = mail_parser::MessageParser::default().parse(&n.raw).unwrap();
            assert_eq!(
                parsed.header_raw("Auto-Submitted").map(str::trim),
                Some("auto-replied")
            );
            let body = parsed.body_text(0).unwrap();
            assert!(body.contains("TJID-2026-000042"), "{kind:?}: {body}");
            assert!(body.contains("19121212-XXXX"), "{kind:?}: {body}");
            assert!(body.contains("Med vänlig hälsning"), "{kind:?}: {body}");
            assert!(!body.contains("{{"), "{kind:?}: {body}");
            assert_eq!(
                parsed.header_raw("MIME-Version").map(str::trim),
                Some("1.0")
            );
            assert!(
                n.message_id.starts_with("<tjid-2026-000042.")
                    && n.message_id.ends_with("@vgregion.se>"),
                "{}",
                n.message_id
            );
        }
        let ordered = render_notice_text(NoticeKind::OrderedAtTelia, &facts(), &SETTINGS).unwrap();
        assert!(ordered.contains("lagd hos Telia"), "{ordered}");
        assert!(ordered.contains("3–5 veckor"), "{ordered}");
        let holder =
            render_notice_text(NoticeKind::DeregisteredHolder, &facts(), &SETTINGS).unwrap();
        assert!(holder.contains("Ditt eTjänstekort"), "{holder}");
    }

    #[test]
    fn only_the_overturn_notice_is_threaded() {
        let n = build_notice(NoticeKind::Overturned, &facts(), "a@b.se", &SETTINGS).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&n.raw).unwrap();
        assert_eq!(parsed.in_reply_to().as_text(), Some("orig@example.se"));
        assert_eq!(parsed.subject(), Some("Re: Beställning"));
        let n = build_notice(NoticeKind::CardReady, &facts(), "a@b.se", &SETTINGS).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&n.raw).unwrap();
        assert!(parsed.in_reply_to().is_empty());
    }
}
