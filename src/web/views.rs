//! Stored rows turned into what the page templates show: Swedish names for codes and states,
//! formatted times, fields in the order of the form.

use minijinja::{context, Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::case::{IgnoreReason, ReasonCode, WarningCode};
use crate::casework::lifecycle::{allowed_actions, state_label_sv, Action};
use crate::clock::format_ms;
use crate::forms::spec::FormKind;
use crate::store::{CaseDetail, CaseSummary, HeldReply, MailRow, Store, StoreError};

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
        before.map(choice_sv).unwrap_or("(tomt)"),
        after.map(choice_sv).unwrap_or("(tomt)")
    )
}

/// A choice's export value (SPEC §2.2) as the form writes the option; any other value as it is.
pub fn choice_sv(value: &str) -> &str {
    match value {
        "Nytt" => "Nytt kort",
        "Ersattning" => "Ersättningskort",
        "Fornyelse" => "Förnyelse",
        "Utlamningsstalle" => "Utlämningsställe",
        "Utkorning" => "Utkörning",
        other => other,
    }
}

fn label<'a>(kind: &str, field: &'a str) -> &'a str {
    FormKind::parse(kind)
        .and_then(|k| k.field(field))
        .map(|f| f.label)
        .unwrap_or(match field {
            crate::forms::spec::SIGNATURE_KEY => crate::forms::spec::SIGNATURE_LABEL,
            other => other,
        })
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
    code.label_sv()
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
        Some(WarningCode::SignatureNotChecked) => {
            "Ingen underskriftsruta hittades – underskriften är inte kontrollerad"
        }
        Some(WarningCode::OpenOrderExists) => {
            "Personen har redan en öppen beställning vid enheten – beställ inte två kort"
        }
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
    /// An order's type (Nytt kort, Förnyelse, …) as the form gives it.
    order_type: Option<String>,
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
        order_type: text(&fields, "bestallningstyp").map(|t| choice_sv(&t).to_string()),
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
    /// A first column to tick rows for the page's batch action.
    pick: bool,
    pickup: bool,
    closed: bool,
    empty: &'static str,
}

impl Table {
    pub fn new(empty: &'static str) -> Table {
        Table {
            heading: None,
            reasons: false,
            pick: false,
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

    /// The order lists: with the order's type, where the card is to be handed out and the
    /// warnings (low OCR confidence, a name that differs from KIV, a card checksum), so that
    /// a case need not be opened to see whether it is clean.
    pub fn pickup(self) -> Table {
        Table {
            pickup: true,
            ..self
        }
    }

    /// With a box to tick each row for the batch form (`id="batch"`) below the table.
    pub fn pick(self) -> Table {
        Table { pick: true, ..self }
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
    sender: String,
    subject: String,
    message_id: Option<String>,
    reprocessed: Option<String>,
    can_reprocess: bool,
}

impl MailItem {
    /// The subject as the list shows it (`(inget ämne)`, `(gallrat)`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// Whether processing an ignored email again could end differently. Each reason is decided
/// by the email itself (its Message-ID, its From, its headers), so a new try ignores it again:
/// no "Behandla igen" for ignored mail.
fn retry_can_change(reason: IgnoreReason) -> bool {
    match reason {
        // The same Message-ID is still recorded as processed.
        IgnoreReason::Duplicate => false,
        // Still from our own address.
        IgnoreReason::OwnMail => false,
        // Still a delivery report (its content type says so).
        IgnoreReason::Bounce => false,
        // Still marked as an automatic reply in its headers.
        IgnoreReason::AutoReply => false,
    }
}

/// Why an email was quarantined, as staff read it. The stored text is the intake's English
/// error (see `intake::prepare`, `intake::analyse_input`, `source::imap::fetch`).
pub fn quarantine_reason_sv(error: &str) -> String {
    let number = |text: &str| -> Option<u64> {
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
    };
    if error.contains("not downloaded") || error.starts_with("the message is larger than") {
        let limit = error
            .rsplit_once("larger than ")
            .and_then(|(_, rest)| number(rest));
        return match limit {
            Some(n) => format!(
                "För stort: meddelandet är större än de {} som tjänsten tar emot.",
                super::email_view::size_sv(n as usize)
            ),
            None => "För stort: meddelandet är större än vad tjänsten tar emot.".into(),
        };
    }
    if error.starts_with("processing took longer than") {
        return match number(error) {
            Some(s) => format!("Behandlingen tog längre tid än {s} s och avbröts."),
            None => "Behandlingen tog för lång tid och avbröts.".into(),
        };
    }
    if error.starts_with("processing stopped before it finished") {
        return "Tjänsten avbröts upprepade gånger medan meddelandet lästes (till exempel av minnesgränsen) och läser det inte igen av sig själv. Behandla igen först när orsaken är åtgärdad.".into();
    }
    if error.starts_with("processing the email failed unexpectedly") {
        return "Behandlingen avbröts av ett oväntat fel i tjänsten.".into();
    }
    if error.contains("tesseract") {
        return "En skannad blankett kräver textigenkänning (Tesseract med svenska), som inte är installerad. Behandla igen när den är det.".into();
    }
    if error.contains("not a MIME message") {
        return "Meddelandet är tomt eller inte ett e-postmeddelande.".into();
    }
    "Meddelandet kunde inte behandlas.".into()
}

/// Whether processing this email again could end differently: quarantined mail (a time-out,
/// a missing OCR, a fault fixed since), and ignored mail only where [`retry_can_change`].
pub fn retry_may_help(m: &MailRow) -> bool {
    match m.outcome.as_str() {
        "quarantined" => true,
        "ignored" => m
            .ignored_reason
            .as_deref()
            .and_then(IgnoreReason::parse)
            .is_some_and(retry_can_change),
        _ => false,
    }
}

pub fn mail_item(m: &MailRow) -> MailItem {
    let ignored = m.ignored_reason.as_deref().and_then(IgnoreReason::parse);
    let quarantined = m.outcome == "quarantined";
    let outcome = match (quarantined, ignored) {
        (true, _) => "Karantän".to_string(),
        (false, Some(IgnoreReason::Duplicate)) => "Ignorerat: dubblett".into(),
        (false, Some(IgnoreReason::OwnMail)) => "Ignorerat: egen e-post".into(),
        (false, Some(IgnoreReason::Bounce)) => "Ignorerat: studs (leveransrapport)".into(),
        (false, Some(IgnoreReason::AutoReply)) => "Ignorerat: autosvar".into(),
        (false, None) => "Ignorerat".into(),
    };
    let purged = m.purged_at.is_some();
    MailItem {
        id: m.id.clone(),
        received: format_ms(m.received_at),
        outcome,
        detail: m.error.as_deref().map(quarantine_reason_sv),
        sender: match &m.sender {
            Some(s) if !s.trim().is_empty() => s.clone(),
            _ if purged => "(gallrat)".into(),
            _ => "(okänd avsändare)".into(),
        },
        subject: if purged {
            "(gallrat)".into()
        } else if m.subject.trim().is_empty() {
            "(inget ämne)".into()
        } else {
            m.subject.clone()
        },
        message_id: m.message_id.clone(),
        reprocessed: m.reprocessed_at.map(format_ms),
        can_reprocess: !purged
            && m.reprocessed_at.is_none()
            && m.source_ref.starts_with("maildir:")
            && retry_may_help(m),
    }
}

#[derive(Serialize)]
pub struct HeldReplyItem {
    id: String,
    case_id: String,
    recipient: String,
    subject: String,
    held_at: String,
    reason: String,
    /// Held in doubt (staff may also say it arrived), not by the rate limit.
    in_doubt: bool,
}

pub fn held_reply_item(r: &HeldReply) -> HeldReplyItem {
    HeldReplyItem {
        id: r.id.clone(),
        case_id: r.case_id.clone(),
        recipient: r.recipient.clone(),
        subject: r.subject.clone(),
        held_at: format_ms(r.held_at),
        reason: hold_reason_sv(r.last_error.as_deref().unwrap_or("")),
        in_doubt: is_in_doubt(r.last_error.as_deref()),
    }
}

/// Whether a held reply's reason says its delivery is in doubt (`Store::reply_in_doubt`).
pub fn is_in_doubt(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| r.starts_with(crate::store::IN_DOUBT))
}

/// A reply's delivery status in the outbox.
pub fn reply_status_sv(status: &str) -> &str {
    match status {
        "pending" => "Väntar",
        "sent" => "Skickat",
        "failed" => "Misslyckades",
        "held" => "Spärrad",
        "withdrawn" => "Återkallat",
        other => other,
    }
}

/// Why a reply is held, from the stored reason: the rate limit's (`outbox::RateLimiter`:
/// `rate limit: 3 replies to this recipient within 600 s (max 3)`) or a delivery in doubt
/// (`Store::reply_in_doubt`).
pub fn hold_reason_sv(why: &str) -> String {
    if why.starts_with(crate::store::IN_DOUBT) {
        return "Osäker leverans: svaret lämnades till e-postservern men serverns kvittens kom aldrig. \
                Det kan ha kommit fram. Se efter i e-postreläets logg innan ni släpper det, \
                annars får mottagaren det två gånger."
            .into();
    }
    let Some(rest) = why.strip_prefix("rate limit: ") else {
        return "Spärrat av gränsen för antal svar till samma mottagare.".into();
    };
    let numbers: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers.as_slice() {
        [n, 24, max] if rest.contains("within 24 h") => {
            format!("Spärrat: {n} svar till samma mottagare senaste dygnet (högst {max}).")
        }
        [n, secs, max] => format!(
            "Spärrat: {n} svar till samma mottagare inom {} (högst {max}).",
            duration_sv(*secs)
        ),
        _ => "Spärrat av gränsen för antal svar till samma mottagare.".into(),
    }
}

fn duration_sv(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s.is_multiple_of(3600) => {
            let h = s / 3600;
            format!("{h} {}", if h == 1 { "timme" } else { "timmar" })
        }
        s if s >= 60 && s.is_multiple_of(60) => {
            let m = s / 60;
            format!("{m} {}", if m == 1 { "minut" } else { "minuter" })
        }
        s => format!("{s} s"),
    }
}

/// A failed or retried delivery, from the sink's English error (`sink::smtp`, `sink::file`):
/// a Swedish summary that keeps the server's code and words.
pub fn delivery_error_sv(error: &str) -> String {
    // `… the server answered RCPT TO with 550 5.1.1 Mailbox unavailable`
    if let Some((_, rest)) = error.split_once("the server answered ") {
        if let Some((_, answer)) = rest.split_once(" with ") {
            let code: String = answer.chars().take_while(char::is_ascii_digit).collect();
            let kind = match code.as_str() {
                // Our own login to the relay was refused, not the reply.
                "530" | "534" | "535" | "538" => "godtog inte tjänstens inloggning",
                c if c.starts_with('5') => "nekade svaret",
                _ => "svarade med ett tillfälligt fel",
            };
            return format!("E-postservern {kind}: {}", answer.trim());
        }
    }
    if error.starts_with("rate limit: ") || error.starts_with(crate::store::IN_DOUBT) {
        return hold_reason_sv(error);
    }
    if error.starts_with("bad recipient address") {
        return "Mottagarens adress är ogiltig.".into();
    }
    if error.starts_with("bad sender address") {
        return "Tjänstens avsändaradress är ogiltig (intake.own_address).".into();
    }
    if error.starts_with("cannot write the reply file")
        || error.starts_with("cannot move the reply file")
    {
        return "Svaret kunde inte sparas i svarskatalogen.".into();
    }
    if error.contains("TLS") || error.contains("certificate") {
        return "Den krypterade förbindelsen med e-postservern kunde inte upprättas (TLS).".into();
    }
    if error.contains("authentication") {
        return "E-postservern godtog inte tjänstens inloggning.".into();
    }
    if error.contains("connecting: ")
        || error.contains("cannot connect")
        || error.contains("no answer within")
        || error.contains("closed the connection")
    {
        return "Servern kunde inte nås.".into();
    }
    "Svaret kunde inte skickas (tekniskt fel).".into()
}

/// Who did it, in the audit trail: a staff member's user name, or the service itself.
fn actor_sv(actor: &str) -> &str {
    match actor {
        "system" => "tjänsten",
        other => other,
    }
}

/// The audit comments the service writes itself (stored in English, fixed texts or built by
/// `store::sqlite::bounce_audit_text` and the rate limit; a released reply's id): Swedish for
/// the page. Staff comment only on the lifecycle's actions, and those are shown as written.
fn system_comment_sv(action: &str, comment: &str) -> String {
    match (action, comment) {
        ("no_reply", "no address to reply to") => {
            "Meddelandet har ingen adress att svara till.".into()
        }
        ("no_notice", "no address to notify the sender") => {
            "Inget meddelande till avsändaren: ingen adress.".into()
        }
        ("no_notice", "no address of the verksamhetschef") => {
            "Inget meddelande till verksamhetschefen: ingen adress.".into()
        }
        ("no_notice", "no KIV address of the card holder") => {
            "Inget meddelande till kortinnehavaren: ingen adress i KIV.".into()
        }
        ("reply_held", why) => hold_reason_sv(why),
        ("reply_released" | "reply_delivered" | "reply_withdrawn", id) => format!("Svar {id}"),
        ("bounce", text) => bounce_sv(text),
        (_, other) => other.to_string(),
    }
}

/// `delivery report for reply 2026-0001-1, action failed, status 5.1.1` in Swedish.
fn bounce_sv(text: &str) -> String {
    let Some(rest) = text.strip_prefix("delivery report") else {
        return text.to_string();
    };
    let mut out = String::from("Leveransrapport");
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(r) = part.strip_prefix("for reply ") {
            out.push_str(&format!(" om svar {r}"));
        } else if let Some(a) = part.strip_prefix("action ") {
            let a = match a {
                "failed" => "kunde inte levereras",
                "delayed" => "försenat",
                "delivered" => "levererat",
                "relayed" => "vidarebefordrat",
                "expanded" => "vidarebefordrat till flera",
                other => other,
            };
            out.push_str(&format!(": {a}"));
        } else if let Some(st) = part.strip_prefix("status ") {
            out.push_str(&format!(" (status {st})"));
        }
    }
    out
}

/// What the case page shows of one case (`case.html.j2`): typed, so that a field renamed
/// here or in the store is a compile error, not an empty cell.
#[derive(Serialize)]
pub struct CaseView {
    c: CaseHeaderView,
    fields: Vec<FieldView>,
    reasons: Vec<String>,
    reasons_stand: bool,
    warnings: Vec<String>,
    links: Vec<Link>,
    actions: Vec<ActionView>,
    replies: Vec<ReplyView>,
    held_replies: usize,
    held_in_doubt: usize,
    /// A held case: its uncertain fields (SPEC §4.4).
    verify: Vec<EditView>,
    /// An open case: every field of its table, to correct.
    correct: Vec<EditView>,
    correct_note: String,
    audit: Vec<AuditView>,
}

#[derive(Serialize)]
struct CaseHeaderView {
    id: String,
    kind: String,
    state: String,
    state_code: String,
    decision: &'static str,
    current_decision: &'static str,
    received: String,
    purged: Option<String>,
    sender: Option<String>,
    subject: String,
    email_date: Option<String>,
    email_date_sv: Option<String>,
    message_id: Option<String>,
    attachment: Option<String>,
    pages: Option<String>,
    source_ref: String,
    headers: String,
}

#[derive(Serialize)]
struct ActionView {
    code: &'static str,
    label: &'static str,
    note: &'static str,
    card: bool,
    comment_required: bool,
}

/// A field staff may confirm or correct: its input (and the crop of its box), or, without a
/// key, the reasons that rest on no one field.
#[derive(Serialize, Default)]
struct EditView {
    key: Option<&'static str>,
    label: Option<&'static str>,
    value: Option<String>,
    options: Option<Vec<OptionView>>,
    crop: bool,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct OptionView {
    export: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct ReplyView {
    id: String,
    recipient: String,
    subject: String,
    status: String,
    status_code: String,
    attempts: i64,
    sent: Option<String>,
    last_error: Option<String>,
    body: String,
}

#[derive(Serialize)]
struct AuditView {
    at: String,
    actor: String,
    action: String,
    change: String,
    comment: Option<String>,
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

/// The decision made when the email was read: history, which a later review does not change.
/// The `created` audit row keeps it (the case's `decision` follows a verification).
fn decision_at_reception_sv(d: &CaseDetail) -> &'static str {
    let at_reception = d
        .audit
        .iter()
        .find(|a| a.action == "created")
        .and_then(|a| a.after.as_deref())
        .unwrap_or(&d.case.decision);
    if at_reception == "queued" {
        "godkänt"
    } else {
        "avvisat"
    }
}

/// The case's decision now, from its state: a review, an overturn or a confirmation moved it.
fn current_decision_sv(state: &str) -> &'static str {
    match state {
        "held" => "väntar på granskning",
        "rejected" | "rejection_confirmed" => "avvisat",
        _ => "godkänt",
    }
}

/// The case page's own part of the context.
pub async fn case_view(store: &Store, d: &CaseDetail) -> Result<CaseView, StoreError> {
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

    let actions: Vec<ActionView> = if c.purged_at.is_some() {
        Vec::new()
    } else {
        allowed_actions(&c.kind, &c.state)
            .into_iter()
            .map(|a| {
                let note = match a {
                    Action::Overturn => {
                        "Ärendet blir att handlägga och avsändaren får ett meddelande. Ett avvisningssvar som ännu inte har skickats återkallas."
                    }
                    Action::Confirm => "Avsändaren har fått eller får besked om avvisningen.",
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
                ActionView {
                    code: a.as_str(),
                    label: a.label_sv(),
                    note,
                    card: a.takes_card_number(),
                    comment_required: a.needs_comment(),
                }
            })
            .collect()
    };

    // SPEC §4.4: a held case shows each uncertain field with its crop and an input; a rejected
    // case offers to correct any field of its table.
    let boxes: Vec<crate::forms::FieldBox> =
        serde_json::from_str(&c.field_boxes).unwrap_or_default();
    let editable = |key: &str| -> Option<EditView> {
        if key == crate::forms::spec::SIGNATURE_KEY && c.kind == "order" {
            // The signature box: staff say whether it is signed (SPEC §2.2).
            let missing = reasons.iter().any(|(code, _)| code == "signature_missing");
            return Some(EditView {
                key: Some(crate::forms::spec::SIGNATURE_KEY),
                label: Some(crate::forms::spec::SIGNATURE_LABEL),
                value: Some(if missing { "nej" } else { "ja" }.to_string()),
                options: Some(vec![
                    OptionView {
                        export: "ja",
                        label: "Underskriven",
                    },
                    OptionView {
                        export: "nej",
                        label: "Inte underskriven",
                    },
                ]),
                crop: boxes.iter().any(|b| b.field == key),
                reasons: Vec::new(),
            });
        }
        let spec = FormKind::parse(&c.kind)?.field(key)?;
        let options: Option<Vec<OptionView>> = match spec.field_type {
            crate::forms::spec::FieldType::Choice(options) => Some(
                options
                    .iter()
                    .map(|o| OptionView {
                        export: o.export,
                        label: o.label,
                    })
                    .collect(),
            ),
            crate::forms::spec::FieldType::YesNo => Some(
                [crate::forms::spec::YES, crate::forms::spec::NO]
                    .into_iter()
                    .map(|o| OptionView {
                        export: o,
                        label: o,
                    })
                    .collect(),
            ),
            crate::forms::spec::FieldType::Text => None,
        };
        Some(EditView {
            key: Some(spec.key),
            label: Some(spec.label),
            value: text(&fields, spec.key),
            options,
            crop: boxes.iter().any(|b| b.field == spec.key),
            reasons: Vec::new(),
        })
    };
    let verify: Vec<EditView> = if c.state == "held" && c.purged_at.is_none() {
        let entries: Vec<Option<String>> = serde_json::from_str(&c.verify).unwrap_or_default();
        entries
            .iter()
            .filter_map(|e| match e {
                Some(key) => editable(key),
                None => Some(EditView {
                    reasons: reasons
                        .iter()
                        .filter(|(_, f)| f.is_none())
                        .map(|(code, f)| reason_sv(&c.kind, code, f.as_deref()))
                        .collect(),
                    ..EditView::default()
                }),
            })
            .collect()
    } else {
        Vec::new()
    };
    // Every field of an open case can be corrected (on a held case, those not already
    // asked for above).
    let open = c.state == "rejected"
        || c.state == "held"
        || crate::casework::verification::OPEN_ACCEPTED.contains(&c.state.as_str());
    let correct: Vec<EditView> = match FormKind::parse(&c.kind) {
        Some(kind) if open && c.purged_at.is_none() => kind
            .fields()
            .iter()
            .filter(|f| !verify.iter().any(|v| v.key == Some(f.key)))
            .filter_map(|f| editable(f.key))
            .collect(),
        _ => Vec::new(),
    };
    let what = match c.kind.as_str() {
        "deregistration" => "avregistreringen",
        _ => "beställningen",
    };
    let correct_note = match c.state.as_str() {
        "rejected" => format!("Rätta ett värde som lästes fel innan du häver avvisningen, så att {what} får rätt uppgifter. Ärendet kontrolleras igen; inget nytt svar skickas."),
        "held" => "Rätta också ett fält som inte är markerat ovan om det lästes fel. Ärendet kontrolleras igen och väntar sedan på din granskning.".to_string(),
        _ => format!("Rätta ett värde som lästes fel, så att {what} görs med rätt uppgifter. Ärendet kontrolleras igen och måste förbli giltigt; inget nytt svar skickas."),
    };

    let replies: Vec<ReplyView> = d
        .replies
        .iter()
        .map(|r| {
            let body = mail_parser::MessageParser::default()
                .parse(r.raw.as_bytes())
                .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
                .unwrap_or_default();
            let last_error = r.last_error.as_deref().map(|e| match r.status.as_str() {
                "held" => hold_reason_sv(e),
                _ => delivery_error_sv(e),
            });
            ReplyView {
                id: r.id.clone(),
                recipient: r.recipient.clone(),
                subject: r.subject.clone(),
                status: reply_status_sv(&r.status).to_string(),
                status_code: r.status.clone(),
                attempts: r.attempts,
                sent: r.sent_at.map(format_ms),
                last_error,
                body,
            }
        })
        .collect();

    let audit: Vec<AuditView> = d
        .audit
        .iter()
        .map(|a| {
            let action = match a.action.as_str() {
                "created" => "Mottaget och bedömt".to_string(),
                "no_reply" => "Inget svar (ingen adress)".to_string(),
                "no_notice" => "Inget meddelande".to_string(),
                "purged" => "Personuppgifter gallrade".to_string(),
                "reply_held" if is_in_doubt(a.comment.as_deref()) => {
                    "Svar spärrat: osäker leverans".to_string()
                }
                "reply_held" => "Svar spärrat av gränsen för antal svar".to_string(),
                "reply_released" => "Spärrat svar skickas ändå".to_string(),
                "reply_resent" => "Misslyckat svar skickas igen".to_string(),
                "reply_delivered" => "Spärrat svar kom fram (enligt reläets logg)".to_string(),
                "reply_withdrawn" => {
                    "Svar återkallat: ärendets nya beslut motsäger det".to_string()
                }
                "bounce" => "Leveransrapport om ett svar".to_string(),
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
                // before/after of these are the reply's outbox status, not the case's state.
                "reply_held" | "reply_released" | "reply_delivered" | "reply_withdrawn" => {
                    match (&a.before, &a.after) {
                        (Some(b), Some(x)) => {
                            format!("{} → {}", reply_status_sv(b), reply_status_sv(x))
                        }
                        _ => String::new(),
                    }
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
            comment = comment.map(|text| system_comment_sv(&a.action, &text));
            AuditView {
                at: format_ms(a.at),
                actor: actor_sv(&a.actor).to_string(),
                action,
                change,
                comment,
            }
        })
        .collect();

    let pages: Vec<i64> = serde_json::from_str(&c.pages).unwrap_or_default();
    let header = CaseHeaderView {
        id: c.id.clone(),
        kind: kind_sv(&c.kind).to_string(),
        state: state_label_sv(&c.state).to_string(),
        state_code: c.state.clone(),
        decision: decision_at_reception_sv(d),
        current_decision: current_decision_sv(&c.state),
        received: format_ms(c.created_at),
        purged: c.purged_at.map(format_ms),
        sender: c.sender.clone(),
        subject: if c.purged_at.is_some() && c.subject.is_empty() {
            "(gallrat)".to_string()
        } else {
            c.subject.clone()
        },
        email_date: c.email_date.clone(),
        email_date_sv: c.email_date.as_deref().map(|d| {
            chrono::DateTime::parse_from_rfc3339(d)
                .map(|t| t.format("%Y-%m-%d %H:%M (%:z)").to_string())
                .unwrap_or_else(|_| d.to_string())
        }),
        message_id: c.message_id.clone(),
        attachment: c.attachment.clone(),
        pages: (!pages.is_empty()).then(|| {
            pages
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }),
        source_ref: c.source_ref.clone(),
        headers: c.headers.clone(),
    };
    let warnings = warnings
        .iter()
        .map(|(code, f)| {
            let text = warning_sv(&c.kind, code, f.as_deref());
            match (code.as_str(), &c.kiv_name) {
                // Both spellings, so that staff need not look KIV up.
                ("name_mismatch", Some(kiv)) => format!("{text}: i KIV ”{kiv}”"),
                _ => text,
            }
        })
        .collect();
    Ok(CaseView {
        c: header,
        fields: field_views,
        reasons: reasons
            .iter()
            .map(|(code, f)| reason_sv(&c.kind, code, f.as_deref()))
            .collect(),
        reasons_stand: reasons_stand(&c.decision, &c.state),
        warnings,
        links,
        actions,
        replies,
        held_replies: d.replies.iter().filter(|r| r.status == "held").count(),
        held_in_doubt: d
            .replies
            .iter()
            .filter(|r| r.status == "held" && is_in_doubt(r.last_error.as_deref()))
            .count(),
        verify,
        correct,
        correct_note,
        audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(outcome: &str, reason: Option<&str>) -> MailRow {
        MailRow {
            id: "m1".into(),
            source_ref: "maildir:1700000000.abc".into(),
            message_id: Some("<a@b>".into()),
            received_at: 0,
            sender: None,
            subject: String::new(),
            outcome: outcome.into(),
            ignored_reason: reason.map(str::to_string),
            error: None,
            reprocessed_at: None,
            purged_at: None,
            content_hash: String::new(),
        }
    }

    #[test]
    fn only_quarantined_mail_is_offered_a_new_try() {
        assert!(mail_item(&mail("quarantined", None)).can_reprocess);
        for reason in IgnoreReason::ALL {
            let m = mail("ignored", Some(reason.as_str()));
            assert!(!retry_may_help(&m), "{reason:?}");
            assert!(!mail_item(&m).can_reprocess, "{reason:?}");
        }
        // Not from the Maildir, already sent back, or erased: nothing to put back.
        let mut m = mail("quarantined", None);
        m.source_ref = "imap:1:2".into();
        assert!(!mail_item(&m).can_reprocess);
        let mut m = mail("quarantined", None);
        m.reprocessed_at = Some(1);
        assert!(!mail_item(&m).can_reprocess);
        let mut m = mail("quarantined", None);
        m.purged_at = Some(1);
        assert!(!mail_item(&m).can_reprocess);
    }

    #[test]
    fn mail_without_a_readable_header_says_so() {
        let item = mail_item(&mail("quarantined", None));
        assert_eq!(item.sender, "(okänd avsändare)");
        assert_eq!(item.subject, "(inget ämne)");
        let mut m = mail("quarantined", None);
        m.sender = Some("eva.nord@friskvardsyd.se".into());
        m.subject = "Beställning".into();
        let item = mail_item(&m);
        assert_eq!(
            (item.sender.as_str(), item.subject.as_str()),
            ("eva.nord@friskvardsyd.se", "Beställning")
        );
        m.purged_at = Some(1);
        m.sender = None;
        m.subject = String::new();
        let item = mail_item(&m);
        assert_eq!(
            (item.sender.as_str(), item.subject.as_str()),
            ("(gallrat)", "(gallrat)")
        );
    }

    #[test]
    fn quarantine_reasons_read_in_swedish() {
        for (stored, shown) in [
            ("the message is larger than 26214400 bytes", "För stort: meddelandet är större än de 25,0 MB som tjänsten tar emot."),
            ("the message is 30000000 bytes, larger than 26214400 bytes; not downloaded", "För stort: meddelandet är större än de 25,0 MB som tjänsten tar emot."),
            ("processing took longer than 120 s", "Behandlingen tog längre tid än 120 s och avbröts."),
            (&crate::pipeline::poison_error(2), "Tjänsten avbröts upprepade gånger medan meddelandet lästes (till exempel av minnesgränsen) och läser det inte igen av sig själv. Behandla igen först när orsaken är åtgärdad."),
            ("processing the email failed unexpectedly (a panic)", "Behandlingen avbröts av ett oväntat fel i tjänsten."),
            ("processing the email failed unexpectedly", "Behandlingen avbröts av ett oväntat fel i tjänsten."),
            ("a scan needs text recognition and tesseract (Swedish) is not installed here; process the email again once it is", "En skannad blankett kräver textigenkänning (Tesseract med svenska), som inte är installerad. Behandla igen när den är det."),
            ("the message is empty or not a MIME message", "Meddelandet är tomt eller inte ett e-postmeddelande."),
            ("something new", "Meddelandet kunde inte behandlas."),
        ] {
            assert_eq!(quarantine_reason_sv(stored), shown, "{stored}");
        }
    }

    #[test]
    fn reply_statuses_read_in_swedish() {
        assert_eq!(reply_status_sv("held"), "Spärrad");
        assert_eq!(reply_status_sv("pending"), "Väntar");
        assert_eq!(reply_status_sv("sent"), "Skickat");
        assert_eq!(reply_status_sv("failed"), "Misslyckades");
    }

    #[test]
    fn the_rate_limit_reason_reads_in_swedish() {
        assert_eq!(
            hold_reason_sv("rate limit: 3 replies to this recipient within 600 s (max 3)"),
            "Spärrat: 3 svar till samma mottagare inom 10 minuter (högst 3)."
        );
        assert_eq!(
            hold_reason_sv("rate limit: 1 replies to this recipient within 45 s (max 1)"),
            "Spärrat: 1 svar till samma mottagare inom 45 s (högst 1)."
        );
        assert_eq!(
            hold_reason_sv("rate limit: 40 replies to this recipient within 24 h (max 40)"),
            "Spärrat: 40 svar till samma mottagare senaste dygnet (högst 40)."
        );
        assert!(hold_reason_sv(
            "in doubt: handed to the SMTP server at 2026-12-06 10:00:00 UTC without a recorded answer; it may have been delivered"
        )
        .starts_with("Osäker leverans: "));
        assert_eq!(
            hold_reason_sv("max 10 per 600 s"),
            "Spärrat av gränsen för antal svar till samma mottagare."
        );
    }

    #[test]
    fn delivery_errors_read_in_swedish_with_the_servers_code() {
        for (stored, shown) in [
            (
                "cannot send the reply through smtp.vgregion.se:587: the server answered RCPT TO with 550 5.1.1 <x@y.se>: Recipient address rejected",
                "E-postservern nekade svaret: 550 5.1.1 <x@y.se>: Recipient address rejected",
            ),
            (
                "cannot send the reply through smtp.vgregion.se:587: the server answered AUTH with 535 5.7.8 Authentication credentials invalid",
                "E-postservern godtog inte tjänstens inloggning: 535 5.7.8 Authentication credentials invalid",
            ),
            (
                "cannot send the reply through smtp.vgregion.se:587: the server answered the end of data with 451 4.3.0 Try again later",
                "E-postservern svarade med ett tillfälligt fel: 451 4.3.0 Try again later",
            ),
            (
                "cannot send the reply through smtp.vgregion.se:587: connecting: Connection refused (os error 111)",
                "Servern kunde inte nås.",
            ),
            (
                "cannot send the reply through smtp.vgregion.se:587: MAIL FROM: no answer within 30 s",
                "Servern kunde inte nås.",
            ),
            (
                "cannot send the reply through smtp.vgregion.se:587: the TLS handshake: invalid peer certificate: UnknownIssuer",
                "Den krypterade förbindelsen med e-postservern kunde inte upprättas (TLS).",
            ),
            ("bad recipient address: invalid", "Mottagarens adress är ogiltig."),
            ("cannot write the reply file: Permission denied", "Svaret kunde inte sparas i svarskatalogen."),
            ("550 no", "Svaret kunde inte skickas (tekniskt fel)."),
        ] {
            assert_eq!(delivery_error_sv(stored), shown, "{stored}");
        }
    }

    #[test]
    fn the_services_own_audit_comments_read_in_swedish() {
        assert_eq!(
            system_comment_sv("no_reply", "no address to reply to"),
            "Meddelandet har ingen adress att svara till."
        );
        for note in [
            "no address to notify the sender",
            "no address of the verksamhetschef",
            "no KIV address of the card holder",
        ] {
            assert!(
                system_comment_sv("no_notice", note).starts_with("Inget meddelande till"),
                "{note}"
            );
        }
        assert_eq!(
            system_comment_sv(
                "reply_held",
                "rate limit: 2 replies to this recipient within 3600 s (max 2)"
            ),
            "Spärrat: 2 svar till samma mottagare inom 1 timme (högst 2)."
        );
        assert_eq!(
            system_comment_sv("reply_released", "2026-0001-1"),
            "Svar 2026-0001-1"
        );
        assert_eq!(
            system_comment_sv(
                "bounce",
                "delivery report for reply 2026-0001-1, action failed, status 5.1.1"
            ),
            "Leveransrapport om svar 2026-0001-1: kunde inte levereras (status 5.1.1)"
        );
        assert_eq!(
            system_comment_sv("bounce", "delivery report"),
            "Leveransrapport"
        );
        // Staff's own words stay as written.
        assert_eq!(
            system_comment_sv("overturn", "Registrerad i KIV i dag."),
            "Registrerad i KIV i dag."
        );
        assert_eq!(actor_sv("system"), "tjänsten");
        assert_eq!(actor_sv("anna"), "anna");
    }

    #[test]
    fn a_correction_reads_as_label_before_and_after() {
        assert_eq!(
            correction_sv("order", "epost", Some("a.bGc.se"), Some("a.b@c.se")),
            "E-postadress: a.bGc.se → a.b@c.se"
        );
    }
}
