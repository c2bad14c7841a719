//! The case lifecycle after the intake's decision (issue 5, SPEC §1 routine): which staff
//! action is allowed in which state, the notices each one sends, and the card bookkeeping.
//!
//! ```text
//! rejected ──overturn (comment)──► queued          rejected ──confirm──► rejection_confirmed
//! order:  queued ──► ordered_at_telia ──► card_ready ──► handed_out (card number)
//! deregistration: queued ──► deregistered
//! handed_out ──correct card number (comment)──► handed_out
//! ```
//!
//! Web and CLI both go through [`apply`]; the store applies the change only if the case is
//! still in the state the check saw, in one transaction with its audit row and notices.

use serde_json::Value;

use super::notice::{build_notice, NoticeFacts, NoticeKind};
use crate::case::RenderedReply;
use crate::pipeline::reply::ReplySettings;
use crate::store::{LifecycleCase, NewKnownCard, Store, StoreError, Transition};

/// A staff action on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Overturn,
    Confirm,
    OrderedAtTelia,
    CardReady,
    HandedOut,
    Deregistered,
    /// A handed-out card's number was recorded wrong: staff put it right.
    CorrectCard,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Overturn,
        Action::Confirm,
        Action::OrderedAtTelia,
        Action::CardReady,
        Action::HandedOut,
        Action::Deregistered,
        Action::CorrectCard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Overturn => "overturn",
            Action::Confirm => "confirm",
            Action::OrderedAtTelia => "ordered_at_telia",
            Action::CardReady => "card_ready",
            Action::HandedOut => "handed_out",
            Action::Deregistered => "deregistered",
            Action::CorrectCard => "correct_card",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The button text on the case page.
    pub fn label_sv(self) -> &'static str {
        match self {
            Action::Overturn => "Häv avvisningen",
            Action::Confirm => "Bekräfta avvisningen",
            Action::OrderedAtTelia => "Beställd hos Telia",
            Action::CardReady => "Kortet klart att hämta",
            Action::HandedOut => "Kortet utlämnat",
            Action::Deregistered => "Avregistrerat",
            Action::CorrectCard => "Rätta kortnumret",
        }
    }

    /// Whether the action records a card number (and so asks for one).
    pub fn takes_card_number(self) -> bool {
        matches!(self, Action::HandedOut | Action::CorrectCard)
    }

    /// Whether staff must say why.
    pub fn needs_comment(self) -> bool {
        matches!(self, Action::Overturn | Action::CorrectCard)
    }
}

/// The Swedish name of a lifecycle state, for pages and the audit trail.
pub fn state_label_sv(state: &str) -> &str {
    match state {
        "queued" => "Att handlägga",
        "rejected" => "Avvisat",
        "held" => "Att granska",
        "rejection_confirmed" => "Avvisning bekräftad",
        "ordered_at_telia" => "Beställt hos Telia",
        "card_ready" => "Klart att hämta",
        "handed_out" => "Utlämnat",
        "deregistered" => "Avregistrerat",
        other => other,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no case {0}")]
    NotFound(String),
    #[error("{action} is not allowed for a {kind} case in state {state}")]
    NotAllowed {
        action: &'static str,
        kind: String,
        state: String,
    },
    #[error("a comment is required for {}", .0.as_str())]
    CommentRequired(Action),
    #[error("a card number is required to mark a card handed out")]
    CardNumberRequired,
    #[error("the card number is not valid (19 digits starting with 9752)")]
    InvalidCardNumber,
    /// The number's last digit is not its Luhn check digit, and staff have not confirmed
    /// that the number is the one on the card.
    #[error("the card number fails its check digit; confirm it against the card")]
    ChecksumUnconfirmed,
    #[error("the card number is the one already recorded")]
    SameCardNumber,
    #[error("the case's personal data has been erased by retention")]
    Purged,
    #[error("{0}")]
    Conflict(String),
    #[error("cannot build the notice: {0}")]
    Notice(#[from] crate::pipeline::reply::ReplyError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => LifecycleError::Conflict(m),
            other => LifecycleError::Store(other),
        }
    }
}

impl LifecycleError {
    /// The message staff see on the page.
    pub fn message_sv(&self) -> String {
        match self {
            LifecycleError::NotFound(id) => format!("Ärendet {id} finns inte."),
            LifecycleError::NotAllowed { action, state, .. } => format!(
                "”{}” går inte i läget ”{}”.",
                Action::parse(action).map(Action::label_sv).unwrap_or(action),
                state_label_sv(state)
            ),
            LifecycleError::CommentRequired(Action::CorrectCard) => {
                "Skriv i kommentaren varför kortnumret rättas.".into()
            }
            LifecycleError::CommentRequired(_) => {
                "En kommentar krävs för att häva en avvisning.".into()
            }
            LifecycleError::CardNumberRequired => "Ange kortnumret på det utlämnade kortet.".into(),
            LifecycleError::InvalidCardNumber => {
                "Kortnumret är ogiltigt: 19 siffror som börjar med 9752.".into()
            }
            LifecycleError::ChecksumUnconfirmed => {
                "Kortnumrets sista siffra stämmer inte med kontrollsiffran (Luhn). Jämför numret med kortet. Stämmer det, kryssa i ”Numret stämmer med kortet” och spara igen."
                    .into()
            }
            LifecycleError::SameCardNumber => {
                "Det är samma kortnummer som redan är registrerat på ärendet.".into()
            }
            LifecycleError::Purged => {
                "Ärendets personuppgifter är gallrade; det kan inte ändras.".into()
            }
            LifecycleError::Conflict(_) => {
                "Ärendet ändrades samtidigt av någon annan, eller kortnumret är redan registrerat. Läs in sidan igen."
                    .into()
            }
            LifecycleError::Notice(_) | LifecycleError::Store(_) => {
                "Ett tekniskt fel uppstod; ingenting ändrades.".into()
            }
        }
    }
}

/// The state an action leads to from `state` for a case of `kind`, if it is allowed.
pub fn target_state(kind: &str, state: &str, action: Action) -> Option<&'static str> {
    match (kind, state, action) {
        // A case without a form has nothing to order or deregister.
        ("order" | "deregistration", "rejected", Action::Overturn) => Some("queued"),
        (_, "rejected", Action::Confirm) => Some("rejection_confirmed"),
        ("order", "queued", Action::OrderedAtTelia) => Some("ordered_at_telia"),
        ("order", "ordered_at_telia", Action::CardReady) => Some("card_ready"),
        ("order", "card_ready", Action::HandedOut) => Some("handed_out"),
        ("deregistration", "queued", Action::Deregistered) => Some("deregistered"),
        ("order", "handed_out", Action::CorrectCard) => Some("handed_out"),
        _ => None,
    }
}

/// The actions offered for a case of `kind` in `state`.
pub fn allowed_actions(kind: &str, state: &str) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| target_state(kind, state, *a).is_some())
        .collect()
}

/// One staff request.
#[derive(Debug, Clone)]
pub struct Request {
    pub case_id: String,
    pub action: Action,
    /// The staff user (their user name).
    pub actor: String,
    pub comment: Option<String>,
    /// For `HandedOut` and `CorrectCard`.
    pub card_number: Option<String>,
    /// Staff have compared a card number that fails its Luhn check with the card.
    pub checksum_confirmed: bool,
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub from: String,
    pub to: String,
    /// Outbox ids of the notices queued.
    pub notices: Vec<String>,
}

fn field(fields: &Value, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `19121212-1212` → `19121212-XXXX` (anything that is not a normalised number stays hidden).
pub fn mask_personnummer(p: &str) -> String {
    match p.split_once('-') {
        Some((date, _)) if date.len() == 8 && date.chars().all(|c| c.is_ascii_digit()) => {
            format!("{date}-XXXX")
        }
        _ => "XXXXXXXX-XXXX".into(),
    }
}

fn facts(case: &LifecycleCase, fields: &Value) -> NoticeFacts {
    let name = match case.kind.as_str() {
        "order" => {
            let parts: Vec<String> = [field(fields, "fornamn"), field(fields, "efternamn")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => field(fields, "namn"),
    };
    let masked = field(fields, "personnummer").map(|p| mask_personnummer(&p));
    let person = match (name, masked) {
        (Some(n), Some(p)) => Some(format!("{n}, {p}")),
        (n, p) => n.or(p),
    };
    let card = case
        .card_number
        .clone()
        .or_else(|| field(fields, "kortnummer"));
    NoticeFacts {
        case_id: case.id.clone(),
        kind: case.kind.clone(),
        person,
        delivery: field(fields, "utlamning"),
        pickup: field(fields, "utlamningsstalle"),
        card_tail: card
            .filter(|c| c.len() >= 4)
            .map(|c| c[c.len() - 4..].to_string()),
        original_subject: case.subject.clone(),
        original_message_id: case.message_id.clone(),
    }
}

/// Checks and applies one staff action.
pub async fn apply(
    store: &Store,
    settings: &ReplySettings<'_>,
    now_ms: i64,
    request: Request,
) -> Result<Applied, LifecycleError> {
    let case = store
        .lifecycle_case(&request.case_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(request.case_id.clone()))?;
    if case.purged_at.is_some() {
        return Err(LifecycleError::Purged);
    }
    let to = target_state(&case.kind, &case.state, request.action).ok_or_else(|| {
        LifecycleError::NotAllowed {
            action: request.action.as_str(),
            kind: case.kind.clone(),
            state: case.state.clone(),
        }
    })?;
    let comment = request
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if request.action.needs_comment() && comment.is_none() {
        return Err(LifecycleError::CommentRequired(request.action));
    }
    let fields: Value = serde_json::from_str(&case.fields).unwrap_or(Value::Null);
    let facts = facts(&case, &fields);

    let mut notices: Vec<RenderedReply> = Vec::new();
    let mut notes = Vec::new();
    let mut notify = |kind: NoticeKind, to: Option<String>, missing: &str| match to {
        Some(address) => build_notice(kind, &facts, &address, settings).map(|n| notices.push(n)),
        None => {
            notes.push(missing.to_string());
            Ok(())
        }
    };
    // The verksamhetschef's KIV address; for a case KIV could not confirm (an overturned
    // rejection), the address written on the form.
    let manager = case
        .manager_mail
        .clone()
        .or_else(|| field(&fields, "vc_epost"));
    let mut card = None;
    let mut replaces_card = None;
    let mut deregistered_card = None;
    let (mut before, mut after) = (case.state.clone(), to.to_string());
    match request.action {
        Action::Overturn => notify(
            NoticeKind::Overturned,
            case.reply_recipient.clone().or_else(|| case.sender.clone()),
            "no address to notify the sender",
        )?,
        Action::Confirm => {}
        Action::OrderedAtTelia => notify(
            NoticeKind::OrderedAtTelia,
            manager,
            "no address of the verksamhetschef",
        )?,
        Action::CardReady => notify(
            NoticeKind::CardReady,
            manager,
            "no address of the verksamhetschef",
        )?,
        Action::HandedOut | Action::CorrectCard => {
            let raw = request
                .card_number
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or(LifecycleError::CardNumberRequired)?;
            let number = crate::domain::CardNumber::parse(raw)
                .map_err(|_| LifecycleError::InvalidCardNumber)?;
            if !number.checksum_ok() && !request.checksum_confirmed {
                return Err(LifecycleError::ChecksumUnconfirmed);
            }
            if request.action == Action::CorrectCard {
                let old = case.card_number.clone().unwrap_or_default();
                if old == number.normalized() {
                    return Err(LifecycleError::SameCardNumber);
                }
                // The audit row shows the number before and after, not the state.
                (before, after) = (old.clone(), number.normalized());
                replaces_card = Some(old);
            }
            card = Some(NewKnownCard {
                card_number: number.normalized(),
                personnummer: field(&fields, "personnummer"),
            });
        }
        Action::Deregistered => {
            notify(
                NoticeKind::DeregisteredManager,
                manager,
                "no address of the verksamhetschef",
            )?;
            notify(
                NoticeKind::DeregisteredHolder,
                case.holder_mail.clone(),
                "no KIV address of the card holder",
            )?;
            deregistered_card = field(&fields, "kortnummer");
        }
    }
    let transition = Transition {
        case_id: case.id.clone(),
        from: case.state.clone(),
        to: to.to_string(),
        actor: request.actor,
        action: request.action.as_str().to_string(),
        comment,
        at: now_ms,
        notices,
        // An overturned rejection's reply must never go out after the overturn (issue 21).
        withdraw_unsent: request.action == Action::Overturn,
        notes,
        card,
        replaces_card,
        deregistered_card,
        audit_before: before,
        audit_after: after,
    };
    let ids = store.apply_transition(&transition).await?;
    tracing::info!(case = %case.id, action = request.action.as_str(), from = %case.state, to, notices = ids.len(), "case transition");
    Ok(Applied {
        from: case.state,
        to: to.to_string(),
        notices: ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_routine_order_of_steps_is_allowed() {
        assert_eq!(
            target_state("order", "rejected", Action::Overturn),
            Some("queued")
        );
        assert_eq!(target_state("unknown", "rejected", Action::Overturn), None);
        assert_eq!(
            target_state("unknown", "rejected", Action::Confirm),
            Some("rejection_confirmed")
        );
        assert_eq!(target_state("order", "queued", Action::HandedOut), None);
        assert_eq!(target_state("order", "queued", Action::CardReady), None);
        assert_eq!(
            target_state("order", "card_ready", Action::HandedOut),
            Some("handed_out")
        );
        assert_eq!(
            target_state("deregistration", "queued", Action::OrderedAtTelia),
            None
        );
        assert_eq!(
            target_state("deregistration", "queued", Action::Deregistered),
            Some("deregistered")
        );
        assert_eq!(target_state("order", "handed_out", Action::Overturn), None);
        assert_eq!(
            allowed_actions("order", "rejected"),
            vec![Action::Overturn, Action::Confirm]
        );
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn masking_never_shows_the_last_four_digits() {
        assert_eq!(mask_personnummer("19121212-1212"), "19121212-XXXX");
        assert_eq!(mask_personnummer("121212-1212"), "XXXXXXXX-XXXX");
        assert_eq!(mask_personnummer("garbage"), "XXXXXXXX-XXXX");
    }
}
