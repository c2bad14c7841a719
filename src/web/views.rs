//! Stored rows turned into what the page templates show: Swedish names for codes and states,
//! formatted times, fields in the order of the form.

use minijinja::{context, Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::case::{IgnoreReason, ReasonCode, WarningCode};
use crate::casework::lifecycle::{allowed_actions, state_label_sv, Action};
use crate::clock::format_ms;
use crate::forms::spec::FormKind;
use crate::store::{CaseDetail, CaseSummary, MailRow, Store, StoreError};

pub fn kind_sv(kind: &str) -> &str {
    match kind {
        "order" => "Beställning",
        "deregistration" => "Avregistrering",
        "unknown" => "Ingen blankett",
        other => other,
    }
}

/// `E-postadress: anna.astromGvgregion.se → anna.astrom@vgregion.se` for the audit trail.
fn correction_sv(kind: &str, field: &str, before: Option<&str>, after: Option<&str>) -> String {
    format!(
        "{}: {} → {}",
        label(kind, field),
        before.unwrap_or("(tomt)"),
        after.unwrap_or("(tomt)")
    )
}

fn label<'a>(kind: &str, field: &'a str) -> &'a str {
    FormKind::parse(kind)
        .and_then(|k| k.field(field))
        .map(|f| f.label)
        .unwrap_or(field)
}

/// A reason as staff read it: what is wrong and with which field.
pub fn reason_sv(kind: &str, code: &str, field: Option<&str>) -> String {
    let text = match ReasonCode::parse(code) {
        Some(c) => reason_label(c),
        None => code,
    };
    match (code, field) {
        ("missing_field" | "invalid_field", Some(f)) => format!("{text}: {}", label(kind, f)),
        _ => text.to_string(),
    }
}

fn reason_label(code: ReasonCode) -> &'static str {
    match code {
        ReasonCode::MissingField => "Fält saknas",
        ReasonCode::InvalidField => "Ogiltigt värde",
        ReasonCode::PersonNotInKiv => "Personen finns inte i KIV",
        ReasonCode::PersonNotAtUnit => "Personen är inte registrerad på vårdenheten",
        ReasonCode::UnitNotInKiv => "Vårdenheten finns inte i KIV",
        ReasonCode::ProviderNotConnected => "Vårdgivaren är inte ansluten",
        ReasonCode::SenderNotManager => "Avsändaren är inte verksamhetschef",
        ReasonCode::UnauthenticatedSender => "Avsändaren kunde inte verifieras (DMARC)",
        ReasonCode::CutCardNotConfirmed => "Klippt kort är inte bekräftat",
        ReasonCode::SignedFormRequired => "Underskriven blankett krävs",
        ReasonCode::UnreadableAttachment => "Bilagan kunde inte läsas",
        ReasonCode::NoFormFound => "Ingen blankett hittades",
    }
}

pub fn warning_sv(kind: &str, code: &str, field: Option<&str>) -> String {
    let text = match WarningCode::parse(code) {
        Some(WarningCode::KivEmploymentMissing) => {
            "Anställningen finns inte (längre) i KIV – rutinen följdes inte"
        }
        Some(WarningCode::UnitNotInKiv) => "Vårdenheten hittades inte i KIV",
        Some(WarningCode::SenderNotManager) => "Avsändaren är inte verksamhetschef enligt KIV",
        Some(WarningCode::NameMismatch) => "Namnet skiljer sig från KIV",
        Some(WarningCode::CardNumberChecksum) => "Kortnumrets kontrollsiffra stämmer inte",
        Some(WarningCode::LowOcrConfidence) => "Osäker tolkning av skanningen (OCR)",
        None => code,
    };
    match field {
        Some(f) if code != "card_number_checksum" => format!("{text} ({})", label(kind, f)),
        _ => text.to_string(),
    }
}

fn findings(json: &str) -> Vec<(String, Option<String>)> {
    let items: Vec<Json> = serde_json::from_str(json).unwrap_or_default();
    items
        .iter()
        .map(|i| {
            (
                i["code"].as_str().unwrap_or("?").to_string(),
                i["field"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Whether the reasons recorded at reception still stand: not once staff overturned the
/// rejection (the case went on as if accepted).
pub fn reasons_stand(decision: &str, state: &str) -> bool {
    decision != "rejected" || matches!(state, "rejected" | "rejection_confirmed" | "held")
}

/// One option of a filter: the value sent and the text shown.
#[derive(Serialize)]
pub struct Choice {
    pub code: String,
    pub label: String,
}

impl Choice {
    pub fn new(code: String, label: String) -> Choice {
        Choice { code, label }
    }
}

pub fn reason_choices() -> Vec<Choice> {
    ReasonCode::ALL
        .iter()
        .map(|c| Choice::new(c.as_str().into(), reason_label(*c).into()))
        .collect()
}

pub fn kind_choices() -> Vec<Choice> {
    ["order", "deregistration", "unknown"]
        .into_iter()
        .map(|k| {
            let label = match k {
                "order" => "Beställning",
                "deregistration" => "Avregistrering",
                _ => "Ingen blankett",
            };
            Choice::new(k.into(), label.into())
        })
        .collect()
}

#[derive(Serialize)]
pub struct CaseItem {
    id: String,
    kind: String,
    state: String,
    received: String,
    sender: Option<String>,
    subject: String,
    person: Option<String>,
    unit: Option<String>,
    pickup: Option<String>,
    reasons: Vec<String>,
    warnings: Vec<String>,
    /// When the case last changed: for a closed case, when it was closed.
    changed: String,
}

fn text(fields: &Json, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// A list row. No personnummer here: the full number is shown only on the case page.
pub fn case_item(c: &CaseSummary) -> CaseItem {
    let fields: Json = serde_json::from_str(&c.fields).unwrap_or(Json::Null);
    let person = match c.kind.as_str() {
        "order" => {
            let parts: Vec<String> = [text(&fields, "fornamn"), text(&fields, "efternamn")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => text(&fields, "namn"),
    };
    let pickup = match text(&fields, "utlamning").as_deref() {
        Some("Utkorning") => Some("Utkörning".to_string()),
        _ => text(&fields, "utlamningsstalle"),
    };
    CaseItem {
        id: c.id.clone(),
        kind: kind_sv(&c.kind).to_string(),
        state: state_label_sv(&c.state).to_string(),
        received: format_ms(c.created_at),
        sender: c.sender.clone(),
        subject: c.subject.clone(),
        person,
        unit: text(&fields, "vardenhet_namn"),
        pickup,
        reasons: findings(&c.reasons)
            .iter()
            .filter(|_| reasons_stand(&c.decision, &c.state))
            .map(|(code, f)| reason_sv(&c.kind, code, f.as_deref()))
            .collect(),
        warnings: findings(&c.warnings)
            .iter()
            .map(|(code, f)| warning_sv(&c.kind, code, f.as_deref()))
            .collect(),
        changed: format_ms(c.updated_at),
    }
}

/// How a list's table looks: its heading, which optional columns it has, what it says when
/// it is empty.
#[derive(Serialize)]
pub struct Table {
    heading: Option<&'static str>,
    reasons: bool,
    pickup: bool,
    closed: bool,
    empty: &'static str,
}

impl Table {
    pub fn new(empty: &'static str) -> Table {
        Table {
            heading: None,
            reasons: false,
            pickup: false,
            closed: false,
            empty,
        }
    }

    pub fn heading(self, heading: &'static str) -> Table {
        Table {
            heading: Some(heading),
            ..self
        }
    }

    /// With the reasons and warnings column.
    pub fn reasons(self) -> Table {
        Table {
            reasons: true,
            ..self
        }
    }

    /// With where the card is to be handed out.
    pub fn pickup(self) -> Table {
        Table {
            pickup: true,
            ..self
        }
    }

    /// With when each case was closed.
    pub fn closed(self) -> Table {
        Table {
            closed: true,
            ..self
        }
    }
}

/// One table of a list page, with its page of cases and where the page lies in the list.
pub fn section(table: Table, cases: &[CaseSummary], paging: impl Serialize) -> Value {
    let items: Vec<CaseItem> = cases.iter().map(case_item).collect();
    context! { table => table, cases => items, paging => paging }
}

#[derive(Serialize)]
pub struct MailItem {
    id: String,
    received: String,
    outcome: String,
    detail: Option<String>,
    sender: Option<String>,
    subject: String,
    message_id: Option<String>,
    reprocessed: Option<String>,
    can_reprocess: bool,
}

pub fn mail_item(m: &MailRow) -> MailItem {
    let outcome = match m.outcome.as_str() {
        "quarantined" => "Karantän".to_string(),
        _ => match m.ignored_reason.as_deref().and_then(IgnoreReason::parse) {
            Some(IgnoreReason::Duplicate) => "Ignorerat: dubblett".into(),
            Some(IgnoreReason::OwnMail) => "Ignorerat: egen e-post".into(),
            Some(IgnoreReason::Bounce) => "Ignorerat: studs (leveransrapport)".into(),
            Some(IgnoreReason::AutoReply) => "Ignorerat: autosvar".into(),
            None => "Ignorerat".into(),
        },
    };
    MailItem {
        id: m.id.clone(),
        received: format_ms(m.received_at),
        outcome,
        detail: m.error.clone(),
        sender: m.sender.clone(),
        subject: if m.purged_at.is_some() {
            "(gallrat)".into()
        } else {
            m.subject.clone()
        },
        message_id: m.message_id.clone(),
        reprocessed: m.reprocessed_at.map(format_ms),
        can_reprocess: m.purged_at.is_none()
            && m.reprocessed_at.is_none()
            && m.source_ref.starts_with("maildir:"),
    }
}

#[derive(Serialize)]
struct FieldView {
    label: String,
    value: Option<String>,
    flag: bool,
}

#[derive(Serialize)]
struct Link {
    text: &'static str,
    id: String,
}

/// The case page's own part of the context.
pub async fn case_view(store: &Store, d: &CaseDetail) -> Result<Value, StoreError> {
    let c = &d.case;
    let fields: Json = serde_json::from_str(&c.fields).unwrap_or(Json::Null);
    let reasons = findings(&c.reasons);
    let warnings = findings(&c.warnings);
    let stand = reasons_stand(&c.decision, &c.state);
    let flagged: Vec<&str> = reasons
        .iter()
        .filter(|_| stand)
        .filter_map(|(_, f)| f.as_deref())
        .chain(warnings.iter().filter_map(|(_, f)| f.as_deref()))
        .collect();
    let mut field_views = Vec::new();
    if let Some(kind) = FormKind::parse(&c.kind) {
        if c.purged_at.is_none() {
            for spec in kind.fields() {
                // Choices are stored as export values; staff read the printed option.
                let value = text(&fields, spec.key).map(|v| match spec.field_type {
                    crate::forms::spec::FieldType::Choice(options) => options
                        .iter()
                        .find(|o| o.export == v)
                        .map(|o| o.label.to_string())
                        .unwrap_or(v),
                    _ => v,
                });
                field_views.push(FieldView {
                    label: spec.label.to_string(),
                    value,
                    flag: flagged.contains(&spec.key),
                });
            }
        }
    }
    for (label, value) in [
        ("Verksamhetschefens adress i KIV", &c.manager_mail),
        ("Kortinnehavarens adress i KIV", &c.holder_mail),
        ("Utlämnat kort", &c.card_number),
    ] {
        if value.is_some() {
            field_views.push(FieldView {
                label: label.to_string(),
                value: value.clone(),
                flag: false,
            });
        }
    }

    let mut links = Vec::new();
    if c.kind == "deregistration" {
        if let Some(card) = text(&fields, "kortnummer") {
            if let Some(known) = store.known_card(&card).await? {
                links.push(Link {
                    text: "Kortet lämnades ut i beställningen",
                    id: known.order_case,
                });
            }
        }
    }
    if let Some(card) = &c.card_number {
        for id in store.deregistrations_of_card(card).await? {
            links.push(Link {
                text: "Kortet avregistreras i",
                id,
            });
        }
    }

    let actions: Vec<Value> = if c.purged_at.is_some() {
        Vec::new()
    } else {
        allowed_actions(&c.kind, &c.state)
            .into_iter()
            .map(|a| {
                let note = match a {
                    Action::Overturn => {
                        "Ärendet blir att handlägga och avsändaren får ett meddelande."
                    }
                    Action::Confirm => "Avsändaren har redan fått besked om avvisningen.",
                    Action::OrderedAtTelia => "Verksamhetschefen får ett meddelande.",
                    Action::CardReady => "Verksamhetschefen får ett meddelande.",
                    Action::HandedOut => "Kortnumret sparas som känt kort för personen.",
                    Action::Deregistered => {
                        "Verksamhetschefen och kortinnehavaren får ett meddelande."
                    }
                    Action::CorrectCard => {
                        "Det gamla och det nya numret sparas i historiken. Inget meddelande skickas."
                    }
                };
                context! {
                    code => a.as_str(),
                    label => a.label_sv(),
                    note => note,
                    card => a.takes_card_number(),
                    comment_required => a.needs_comment(),
                }
            })
            .collect()
    };

    // SPEC §4.4: a held case shows each uncertain field with its crop and an input; a rejected
    // case offers to correct any field of its table.
    let boxes: Vec<crate::forms::FieldBox> =
        serde_json::from_str(&c.field_boxes).unwrap_or_default();
    let editable = |key: &str| -> Option<Value> {
        let spec = FormKind::parse(&c.kind)?.field(key)?;
        let options: Option<Vec<Value>> = match spec.field_type {
            crate::forms::spec::FieldType::Choice(options) => Some(
                options
                    .iter()
                    .map(|o| context! { export => o.export, label => o.label })
                    .collect(),
            ),
            crate::forms::spec::FieldType::YesNo => Some(
                [crate::forms::spec::YES, crate::forms::spec::NO]
                    .iter()
                    .map(|o| context! { export => o, label => o })
                    .collect(),
            ),
            crate::forms::spec::FieldType::Text => None,
        };
        Some(context! {
            key => spec.key,
            label => spec.label,
            value => text(&fields, spec.key),
            options => options,
            crop => boxes.iter().any(|b| b.field == spec.key),
        })
    };
    let verify: Vec<Value> = if c.state == "held" && c.purged_at.is_none() {
        let entries: Vec<Option<String>> = serde_json::from_str(&c.verify).unwrap_or_default();
        entries
            .iter()
            .filter_map(|e| match e {
                Some(key) => editable(key),
                None => Some(context! {
                    key => Option::<String>::None,
                    reasons => reasons
                        .iter()
                        .filter(|(_, f)| f.is_none())
                        .map(|(code, f)| reason_sv(&c.kind, code, f.as_deref()))
                        .collect::<Vec<_>>(),
                }),
            })
            .collect()
    } else {
        Vec::new()
    };
    let correct: Vec<Value> = match FormKind::parse(&c.kind) {
        Some(kind) if c.state == "rejected" && c.purged_at.is_none() => kind
            .fields()
            .iter()
            .filter_map(|f| editable(f.key))
            .collect(),
        _ => Vec::new(),
    };

    let replies: Vec<Value> = d
        .replies
        .iter()
        .map(|r| {
            let body = mail_parser::MessageParser::default()
                .parse(r.raw.as_bytes())
                .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
                .unwrap_or_default();
            let status = match r.status.as_str() {
                "pending" => "Väntar",
                "sent" => "Skickat",
                "failed" => "Misslyckades",
                other => other,
            };
            context! {
                id => r.id, recipient => r.recipient, subject => r.subject,
                status => status, status_code => r.status, attempts => r.attempts,
                sent => r.sent_at.map(format_ms), last_error => r.last_error, body => body,
            }
        })
        .collect();

    let audit: Vec<Value> = d
        .audit
        .iter()
        .map(|a| {
            let action = match a.action.as_str() {
                "created" => "Mottaget och bedömt".to_string(),
                "no_reply" => "Inget svar (ingen adress)".to_string(),
                "no_notice" => "Inget meddelande".to_string(),
                "purged" => "Personuppgifter gallrade".to_string(),
                "reply_held" => "Svar spärrat av gränsen för antal svar".to_string(),
                "reply_released" => "Spärrat svar skickas ändå".to_string(),
                "held" => "Väntar på granskning (osäker tolkning)".to_string(),
                "field_corrected" => "Rättat fält".to_string(),
                "verified" => "Granskat och bekräftat".to_string(),
                "correct_card" => "Kortnumret rättat".to_string(),
                other => Action::parse(other)
                    .map(|x| x.label_sv().to_string())
                    .unwrap_or_else(|| other.to_string()),
            };
            let mut comment = a.comment.clone();
            let change = match a.action.as_str() {
                // before/after are the field's values, the comment its key.
                "field_corrected" => correction_sv(
                    &c.kind,
                    comment.take().as_deref().unwrap_or("?"),
                    a.before.as_deref(),
                    a.after.as_deref(),
                ),
                // before/after are the card numbers.
                "correct_card" => format!(
                    "Kortnummer {} → {}",
                    a.before.as_deref().unwrap_or("–"),
                    a.after.as_deref().unwrap_or("–")
                ),
                "held" => {
                    // The comment lists the field keys: staff read the labels.
                    comment = comment.map(|keys| {
                        let labels: Vec<&str> =
                            keys.split(", ").map(|k| label(&c.kind, k)).collect();
                        format!("Osäkra fält: {}", labels.join(", "))
                    });
                    state_label_sv("held").to_string()
                }
                _ => match (&a.before, &a.after) {
                    (Some(b), Some(x)) => {
                        format!("{} → {}", state_label_sv(b), state_label_sv(x))
                    }
                    (None, Some(x)) => state_label_sv(x).to_string(),
                    _ => String::new(),
                },
            };
            if a.action == "verified" {
                comment = comment.map(|text| match text.strip_prefix("Granskat: ") {
                    Some(keys) => {
                        let labels: Vec<&str> =
                            keys.split(", ").map(|k| label(&c.kind, k)).collect();
                        format!("Granskade fält: {}", labels.join(", "))
                    }
                    None => text,
                });
            }
            context! { at => format_ms(a.at), actor => a.actor, action => action, change => change, comment => comment }
        })
        .collect();

    let pages: Vec<i64> = serde_json::from_str(&c.pages).unwrap_or_default();
    let case = context! {
        id => c.id,
        kind => kind_sv(&c.kind),
        state => state_label_sv(&c.state),
        state_code => c.state,
        decision => if c.decision == "queued" { "godkänt" } else { "avvisat" },
        received => format_ms(c.created_at),
        purged => c.purged_at.map(format_ms),
        sender => c.sender,
        subject => if c.purged_at.is_some() && c.subject.is_empty() { "(gallrat)".to_string() } else { c.subject.clone() },
        email_date => c.email_date,
        email_date_sv => c.email_date.as_deref().map(|d| {
            chrono::DateTime::parse_from_rfc3339(d)
                .map(|t| t.format("%Y-%m-%d %H:%M (%:z)").to_string())
                .unwrap_or_else(|_| d.to_string())
        }),
        message_id => c.message_id,
        attachment => c.attachment,
        pages => (!pages.is_empty()).then(|| pages.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")),
        source_ref => c.source_ref,
        headers => c.headers,
    };
    Ok(context! {
        c => case,
        fields => field_views,
        reasons => reasons.iter().map(|(code, f)| reason_sv(&c.kind, code, f.as_deref())).collect::<Vec<_>>(),
        reasons_stand => reasons_stand(&c.decision, &c.state),
        warnings => warnings.iter().map(|(code, f)| warning_sv(&c.kind, code, f.as_deref())).collect::<Vec<_>>(),
        links => links,
        actions => actions,
        replies => replies,
        held_replies => d.replies.iter().filter(|r| r.status == "held").count(),
        verify => verify,
        correct => correct,
        audit => audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_reads_as_label_before_and_after() {
        assert_eq!(
            correction_sv("order", "epost", Some("a.bGc.se"), Some("a.b@c.se")),
            "E-postadress: a.bGc.se → a.b@c.se"
        );
    }
}
