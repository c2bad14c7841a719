//! The store's part for staff work: users and sessions of the review pages, checked state
//! transitions with their notices and audit rows, known cards, the mail lists and retention.
//! The rules (which transition is allowed, what a notice says) live in `crate::casework::lifecycle`;
//! the store only makes each change atomic and refuses one whose starting state moved.

use serde::Serialize;

use super::{dispatch_store, CaseSummary, Store, StoreError};
use crate::case::RenderedReply;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub username: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: i64,
    pub created_at: i64,
}

/// A live session with its user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub username: String,
    pub display_name: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// What a state transition needs to know about its case, read before the change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LifecycleCase {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub fields: String,
    pub manager_mail: Option<String>,
    pub holder_mail: Option<String>,
    pub card_number: Option<String>,
    pub purged_at: Option<i64>,
    pub message_id: Option<String>,
    pub subject: String,
    pub sender: Option<String>,
    /// Where the first reply went (the sender's Reply-To, else From).
    pub reply_recipient: Option<String>,
}

/// A card that was handed out, to be recorded with the transition.
#[derive(Debug, Clone)]
pub struct NewKnownCard {
    pub card_number: String,
    pub personnummer: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KnownCard {
    pub card_number: String,
    pub order_case: String,
    pub handed_out_at: i64,
    pub deregistered_case: Option<String>,
    pub deregistered_at: Option<i64>,
}

/// One checked change of a case's state, applied atomically: the state (only if it is still
/// `from`), the audit row, the notices into the outbox and the card bookkeeping.
#[derive(Debug, Clone)]
pub struct Transition {
    pub case_id: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub action: String,
    pub comment: Option<String>,
    pub at: i64,
    pub notices: Vec<RenderedReply>,
    /// The case's earlier replies that are not yet handed over (pending, held by the rate
    /// limit or in doubt, failed) are withdrawn: the new decision contradicts them (an
    /// overturned rejection must never reach the provider after its overturn notice).
    pub withdraw_unsent: bool,
    /// Audit notes for notices that could not be sent (no address known).
    pub notes: Vec<String>,
    /// Recorded when an order's card is handed out, or its number corrected.
    pub card: Option<NewKnownCard>,
    /// A correction: the number recorded so far, which `card` replaces.
    pub replaces_card: Option<String>,
    /// A deregistration done: marks this known card as deregistered.
    pub deregistered_card: Option<String>,
    /// What the audit row shows as before and after: the states, or for a card number's
    /// correction the old and the new number.
    pub audit_before: String,
    pub audit_after: String,
}

/// An email on the "Ignorerat och karantän" page.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MailRow {
    pub id: String,
    pub source_ref: String,
    pub message_id: Option<String>,
    pub received_at: i64,
    pub sender: Option<String>,
    pub subject: String,
    pub outcome: String,
    pub ignored_reason: Option<String>,
    pub error: Option<String>,
    pub reprocessed_at: Option<i64>,
    pub purged_at: Option<i64>,
    /// Of the raw email: its kept copy is shown only when it is this email.
    pub content_hash: String,
}

/// A case made from an email, as the email's view on a case page lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MessageCase {
    pub id: String,
    pub kind: String,
    pub reasons: String,
    pub attachment: Option<String>,
    pub attachment_index: Option<i64>,
    pub pages: String,
}

/// When the oldest item waiting in each list arrived (ms; `None`: the list is empty), for
/// the overview.
#[derive(Debug, Clone, Copy, Default, Serialize, sqlx::FromRow)]
pub struct OldestWaiting {
    pub rejected: Option<i64>,
    pub held: Option<i64>,
    pub to_order: Option<i64>,
    pub to_deregister: Option<i64>,
    pub held_replies: Option<i64>,
    pub quarantined: Option<i64>,
}

/// Cases of one kind and decision at reception, counted.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KindDecisionCount {
    pub kind: String,
    pub decision: String,
    pub n: i64,
}

/// The numbers in the navigation.
#[derive(Debug, Clone, Copy, Default, Serialize, sqlx::FromRow)]
pub struct QueueCounts {
    pub rejected: i64,
    /// Held for verification (SPEC §4.4): the "Att granska" list.
    pub held: i64,
    pub to_order: i64,
    pub to_deregister: i64,
    pub in_progress: i64,
    pub quarantined: i64,
    /// Replies held for staff (the rate limit, or in doubt): the "Spärrade svar" list.
    pub held_replies: i64,
}

/// A reply held back by the per-recipient rate limit or held in doubt, on the "Spärrade svar"
/// list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HeldReply {
    pub id: String,
    pub case_id: String,
    pub recipient: String,
    pub subject: String,
    /// Why it was held (the rate limit's reason, or `IN_DOUBT`…).
    pub last_error: Option<String>,
    pub created_at: i64,
    /// When it was held: the latest hold of the case's replies.
    pub held_at: i64,
}

/// How long each outcome is kept (milliseconds), from `[retention]`.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub ignored_ms: i64,
    pub quarantined_ms: i64,
    pub rejected_ms: i64,
    pub completed_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub messages: u64,
    pub rejected_cases: u64,
    pub completed_cases: u64,
    /// Source references of the emails erased now: their raw copies (Maildir `cur/`) go too.
    #[serde(skip)]
    pub source_refs: Vec<String>,
}

/// The states in which a case is finished and waits only for retention.
pub const COMPLETED_STATES: &[&str] = &["handed_out", "deregistered"];
/// Rejected cases, confirmed or not, are kept the shorter time.
pub const REJECTED_STATES: &[&str] = &["rejected", "rejection_confirmed"];

impl Store {
    pub async fn add_user(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch_store!(self, s => s.add_user(username, display_name, password_hash, now_ms).await)
    }

    /// Disables (or enables) a user; disabling ends the user's sessions. False: no such user.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch_store!(self, s => s.set_user_disabled(username, disabled, now_ms).await)
    }

    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch_store!(self, s => s.set_password(username, password_hash, now_ms).await)
    }

    pub async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        dispatch_store!(self, s => s.user(username).await)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        dispatch_store!(self, s => s.users().await)
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch_store!(self, s => s.create_session(token_hash, username, csrf, now_ms, expires_ms).await)
    }

    /// The live session of this token hash, if its user is still enabled.
    pub async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        dispatch_store!(self, s => s.session(token_hash, now_ms).await)
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch_store!(self, s => s.delete_session(token_hash).await)
    }

    /// Failed logins of `key` after `since_ms`: how many, and the oldest one's time.
    pub async fn login_failures(
        &self,
        key: &str,
        since_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        dispatch_store!(self, s => s.login_failures(key, since_ms).await)
    }

    /// Records a failed login under each key, and forgets failures at or before
    /// `forget_before_ms` (outside every lockout window).
    pub async fn login_failed(
        &self,
        keys: &[String],
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch_store!(self, s => s.login_failed(keys, at_ms, forget_before_ms).await)
    }

    /// Forgets the failed logins of `key` (a successful login of that account).
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        dispatch_store!(self, s => s.clear_login_failures(key).await)
    }

    pub async fn lifecycle_case(&self, id: &str) -> Result<Option<LifecycleCase>, StoreError> {
        dispatch_store!(self, s => s.lifecycle_case(id).await)
    }

    /// Applies a transition atomically. `Conflict` when the case is no longer in `from`, or
    /// when the card number is already recorded.
    pub async fn apply_transition(&self, t: &Transition) -> Result<Vec<String>, StoreError> {
        dispatch_store!(self, s => s.apply_transition(t).await)
    }

    pub async fn known_card(&self, card_number: &str) -> Result<Option<KnownCard>, StoreError> {
        dispatch_store!(self, s => s.known_card(card_number).await)
    }

    /// Deregistration cases that carry the card number of this order case's card.
    pub async fn deregistrations_of_card(
        &self,
        card_number: &str,
    ) -> Result<Vec<String>, StoreError> {
        dispatch_store!(self, s => s.deregistrations_of_card(card_number).await)
    }

    /// Cases by case number, personnummer, HSA-id (unit or sender's) or card number, and, for
    /// three characters or more, by a part of the person's name, the subject, the sender's
    /// address or the unit's name (case-insensitive).
    /// `limit` hits after skipping `offset`, newest first.
    pub async fn search(
        &self,
        query: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseSummary>, StoreError> {
        dispatch_store!(self, s => s.search(query, limit, offset).await)
    }

    /// Every case made from the email stored as `message_row`, in the order of its forms.
    pub async fn message_cases(&self, message_row: &str) -> Result<Vec<MessageCase>, StoreError> {
        dispatch_store!(self, s => s.message_cases(message_row).await)
    }

    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        dispatch_store!(self, s => s.queue_counts().await)
    }

    /// The cases received from `since_ms` on, by kind and decision at reception.
    pub async fn received_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<KindDecisionCount>, StoreError> {
        dispatch_store!(self, s => s.received_since(since_ms).await)
    }

    /// When the oldest item of each list arrived.
    pub async fn oldest_waiting(&self) -> Result<OldestWaiting, StoreError> {
        dispatch_store!(self, s => s.oldest_waiting().await)
    }

    /// Replies held back by the rate limit, longest held first.
    pub async fn held_replies(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<HeldReply>, StoreError> {
        dispatch_store!(self, s => s.held_replies(limit, offset).await)
    }

    /// The replies the rate limit holds for `recipient` (any case, not those held in doubt),
    /// oldest first: what "Skicka alla till mottagaren" on Spärrade svar releases.
    pub async fn held_by_limit_to(&self, recipient: &str) -> Result<Vec<String>, StoreError> {
        dispatch_store!(self, s => s.held_by_limit_to(recipient).await)
    }

    /// Ignored and quarantined emails, newest first: `limit` after skipping `offset`.
    pub async fn unprocessed_mail(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<MailRow>, StoreError> {
        dispatch_store!(self, s => s.unprocessed_mail(limit, offset).await)
    }

    pub async fn mail(&self, id: &str) -> Result<Option<MailRow>, StoreError> {
        dispatch_store!(self, s => s.mail(id).await)
    }

    pub async fn mark_reprocessed(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        dispatch_store!(self, s => s.mark_reprocessed(id, now_ms).await)
    }

    /// Erases personal data whose retention ran out, keeping a minimal shell of each case.
    pub async fn purge(
        &self,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<PurgeReport, StoreError> {
        dispatch_store!(self, s => s.purge(policy, now_ms).await)
    }
}
