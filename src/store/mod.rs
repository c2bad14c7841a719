//! The store boundary: messages, cases, the outbox and the audit trail. One transaction per
//! email covers its message row, its cases and their replies-to-send.

mod attempts;
pub mod lease;
pub mod migrate;
mod open_orders;
pub mod postgres;
mod postgres_staff;
pub mod providers;
mod settings;
pub mod sqlite;
mod sqlite_staff;
pub mod staff;
mod staff_queries;
pub mod terms;

use serde::Serialize;

use crate::case::{CheckedCase, IgnoreReason, RenderedReply};

pub use attempts::MAX_UNFINISHED_ATTEMPTS;
pub use postgres::PgStore;
pub use settings::{StoreKind, StoreSettings};
pub use sqlite::SqliteStore;
pub use staff::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The operation does not exist on this backend.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The row changed between reading and writing (another user acted first).
    #[error("the case changed meanwhile: {0}")]
    Conflict(String),
}

/// The closed set of store backends.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// How long the outbox worker may take to settle a reply it took before another instance may
/// take it (its instance is then presumed dead): the replies of an instance killed mid-pass wait
/// this long. Longer than a pass of `OUTBOX_BATCH` replies.
pub const OUTBOX_CLAIM_MS: i64 = 2 * 60 * 1000;
/// Replies taken at once by the outbox worker.
pub const OUTBOX_BATCH: i64 = 50;

/// Emails and cases erased in one transaction of retention (`purge`): a batch holds the
/// writer for a fraction of a second.
pub const PURGE_BATCH: i64 = 100;
/// The pause between two batches of retention, in which others write.
const PURGE_PAUSE_MS: u64 = 20;

/// A name for one store instance, written in the outbox claims it makes.
/// A fresh row id.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn new_holder() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[..8])
}

/// How the reason of a reply held in doubt begins (`Store::reply_in_doubt`).
pub const IN_DOUBT: &str = "in doubt: ";

/// What staff do with a held reply.
#[derive(Debug, Clone, Copy)]
pub enum SettleHeld {
    /// Send it after all (`Store::release_held`).
    Send,
    /// It was delivered: record it as sent (in doubt only).
    Delivered,
}

impl SettleHeld {
    /// The update, the same on both backends: $1 case, $2 actor, $3 now, $4 one reply or NULL.
    fn sql(self) -> &'static str {
        match self {
            SettleHeld::Send => {
                "UPDATE outbox SET status = 'pending', released_by = $2, next_attempt_at = $3
                 WHERE case_id = $1 AND status = 'held' AND id = COALESCE($4, id) RETURNING id"
            }
            SettleHeld::Delivered => {
                "UPDATE outbox SET status = 'sent', released_by = $2, sent_at = $3, last_error = NULL
                 WHERE case_id = $1 AND status = 'held' AND id = COALESCE($4, id)
                   AND last_error LIKE 'in doubt: %' RETURNING id"
            }
        }
    }

    /// The audit action.
    fn action(self) -> &'static str {
        match self {
            SettleHeld::Send => "reply_released",
            SettleHeld::Delivered => "reply_delivered",
        }
    }

    /// The reply's status afterwards.
    fn status(self) -> &'static str {
        match self {
            SettleHeld::Send => "pending",
            SettleHeld::Delivered => "sent",
        }
    }
}

/// One email as it is recorded.
#[derive(Debug, Clone)]
pub struct MailRecord {
    pub source_ref: String,
    pub message_id: Option<String>,
    pub content_hash: String,
    pub received_at: i64,
    pub email_date: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub headers: String,
    /// Set when the pipeline ignores the email (duplicate is found by the store itself).
    pub ignored: Option<IgnoreReason>,
    /// Set when the email is quarantined.
    pub error: Option<String>,
    /// For a delivery report (ignored as `bounce`): the case of ours it is about.
    pub bounce: Option<crate::bounce::BounceLink>,
}

/// What `record` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The source reference was recorded before: a replay after a crash. Nothing was written.
    AlreadyRecorded,
    Ignored(IgnoreReason),
    Quarantined,
    Processed {
        case_ids: Vec<String>,
        /// The positions (in `case_ids`) of the orders flagged `open_order_exists` while
        /// recording (SPEC §4.3): their person already had an open order at their unit.
        open_order_exists: Vec<usize>,
    },
}

/// Builds the reply of a case once its number is known.
pub type RenderReply<'a> =
    dyn Fn(&CheckedCase, &str, &str) -> Option<RenderedReply> + Send + Sync + 'a;

/// The states in which a delivery's answer (accepted, refused) may still change a reply:
/// pending (not handed over) or handed over with its answer not recorded yet. Every outbox
/// change a sender makes is guarded by it: a reply held in doubt, withdrawn, failed or
/// already answered is not changed by a late answer.
pub const AWAITING_ANSWER: &str =
    "(status = 'pending' OR (status = 'sent' AND sending_at IS NOT NULL))";

/// A reply waiting in the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub case_id: String,
    pub sender: String,
    pub recipient: String,
    pub raw: String,
    pub attempts: i64,
    pub created_at: i64,
    /// Staff released it after the rate limit held it: it goes out past the limit.
    pub released_by: Option<String>,
    /// 1 for a reply the service sent by itself to incoming mail (the rate limit's business),
    /// 0 for one a member of staff triggered (see `ReplyTrigger`).
    pub automatic: i64,
}

impl OutboxRow {
    /// Loop protection applies to it: an automatic reply nobody released.
    pub fn rate_limited(&self) -> bool {
        self.automatic != 0 && self.released_by.is_none()
    }
}

/// Who caused a reply: the service answering incoming mail by itself, or a member of staff
/// (a notice, a verification, an overturn). Only automatic replies can feed a loop with
/// another robot, so only they are counted and held by the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTrigger {
    Automatic,
    Staff,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CaseSummary {
    pub id: String,
    pub kind: String,
    pub decision: String,
    pub state: String,
    pub reasons: String,
    pub created_at: i64,
    pub subject: String,
    pub fields: String,
    pub warnings: String,
    pub sender: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub kind: String,
    pub decision: String,
    pub state: String,
    pub fields: String,
    pub reasons: String,
    pub warnings: String,
    pub attachment: Option<String>,
    pub pages: String,
    pub created_at: i64,
    pub source_ref: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub headers: String,
    pub manager_mail: Option<String>,
    pub holder_mail: Option<String>,
    pub card_number: Option<String>,
    pub updated_at: i64,
    pub purged_at: Option<i64>,
    pub email_date: Option<String>,
    /// See the migration `case_attachment_index`.
    pub attachment_index: Option<i64>,
    /// SHA-256 of the raw email, to know its copy in the Maildir is the same email.
    pub content_hash: String,
    pub message_purged_at: Option<i64>,
    /// JSON: the fields a held case waits on (SPEC §4.4); `[]` once decided.
    pub verify: String,
    /// JSON: where each field was read on a scanned page (`crate::forms::FieldBox`).
    pub field_boxes: String,
    /// The id of the email's row (a reply's Message-ID is made from it).
    #[serde(skip)]
    pub message_row: String,
    /// The person's name as KIV spells it, when KIV knew the person at reception.
    pub kiv_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReplyRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
    pub raw: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BounceRow {
    pub at: i64,
    pub outbox_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    pub case: CaseRow,
    pub replies: Vec<ReplyRow>,
    pub audit: Vec<AuditRow>,
    /// Delivery reports about this case's replies.
    pub bounces: Vec<BounceRow>,
}

/// One verification by staff (SPEC §4.4), written in one transaction: the case's new
/// fields, reasons and warnings, its state (only if it is still `from`), one audit row per
/// corrected field, one for a confirmation, and the reply of a confirmed held case.
#[derive(Debug, Clone)]
pub struct Verification {
    pub case_id: String,
    pub from: String,
    pub to: String,
    /// The new decision (a confirmed held case); `None` keeps the decision made at reception.
    pub decision: Option<String>,
    pub actor: String,
    pub at: i64,
    pub fields: String,
    pub reasons: String,
    pub warnings: String,
    pub verify: String,
    pub manager_mail: Option<String>,
    pub holder_mail: Option<String>,
    /// (field, before, after).
    pub corrections: Vec<(String, Option<String>, Option<String>)>,
    /// Audit comment of the confirmation; `None`: corrections only.
    pub confirmed: Option<String>,
    /// The reply (outbox id, message) of a confirmed held case.
    pub reply: Option<(String, RenderedReply)>,
    /// Why a confirmed case got no reply.
    pub no_reply: Option<String>,
}

/// Where an IMAP folder was left: UIDVALIDITY and the highest UID recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapPosition {
    pub uid_validity: u32,
    pub last_uid: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    pub decision: Option<String>,
    pub kind: Option<String>,
    /// Lifecycle state (`rejected` is the rejection queue, `queued` the work lists).
    pub state: Option<String>,
    /// Only finished cases ([`CLOSED_STATES`]): the "Avslutade" list.
    pub closed: bool,
    /// Cases that carry this reason code.
    pub reason: Option<String>,
    /// Cases whose unit HSA-id (`vardenhet_hsaid`) is this, ignoring case.
    pub unit: Option<String>,
    /// Last changed at or after this time (ms).
    pub changed_from: Option<i64>,
    /// Last changed before this time (ms).
    pub changed_before: Option<i64>,
    /// At most this many (0: no limit), after skipping `offset`.
    pub limit: i64,
    pub offset: i64,
    /// Oldest first (the "Att granska" list); else newest first.
    pub oldest_first: bool,
}

/// The states in which nothing more is to be done with a case: the "Avslutade" list. The
/// store's SQL names the same three (`staff_queries.rs`; the store contract checks it).
pub const CLOSED_STATES: [&str; 3] = ["handed_out", "deregistered", "rejection_confirmed"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Counts {
    pub messages: i64,
    pub cases: i64,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub outbox_failed: i64,
    /// Replies held for staff: by the per-recipient rate limit, or in doubt.
    pub outbox_held: i64,
    /// Replies handed to the SMTP server whose answer is not recorded yet (counted in
    /// `outbox_sent` too): a few in flight; more that stay mean a lost sender.
    pub outbox_awaiting: i64,
    /// Emails waiting for KIV (LDAP) to come back.
    pub kiv_waiting: i64,
}

/// An email whose KIV check waits for the directory.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WaitingRow {
    pub source_ref: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub first_seen_at: i64,
    pub last_attempt_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub last_error: String,
}

/// What is known of a waiting email when it is (again) found waiting.
#[derive(Debug, Clone)]
pub struct WaitingMail {
    pub source_ref: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: String,
    pub error: String,
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}
// The staff part (staff.rs) dispatches the same way.
pub(crate) use dispatch as dispatch_store;

impl Store {
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Store, StoreError> {
        let store = Store::Sqlite(SqliteStore::open(path).await?);
        store.index_search_terms().await?;
        Ok(store)
    }

    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let store = Store::Postgres(PgStore::open(url).await?);
        store.index_search_terms().await?;
        Ok(store)
    }

    /// Puts the cases recorded before the search index existed into it (`terms`), 500 to a
    /// transaction: once, at the first start after the upgrade. Later cases are indexed as
    /// they are recorded. Another instance doing the same at once only adds the same rows.
    pub async fn index_search_terms(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT c.id, c.fields, m.subject, m.sender, c.kiv_name
             FROM cases c JOIN messages m ON m.id = c.message
             WHERE c.terms_indexed = 0 AND c.purged_at IS NULL ORDER BY c.id LIMIT 500";
        type Row = (String, String, String, Option<String>, Option<String>);
        let now = chrono::Utc::now().timestamp_millis();
        let mut done = 0;
        loop {
            let rows: Vec<Row> =
                dispatch!(self, s => sqlx::query_as(SQL).fetch_all(&s.pool).await?);
            if rows.is_empty() {
                break;
            }
            let mut script = sqlite::Script::default();
            for (id, fields, subject, sender, kiv_name) in &rows {
                let fields: serde_json::Value = serde_json::from_str(fields).unwrap_or_default();
                let text = terms::CaseText {
                    case_id: id,
                    fields: &fields,
                    subject,
                    sender: sender.as_deref(),
                    kiv_name: kiv_name.as_deref(),
                };
                sqlite::push_terms(&mut script, &text, now);
                sqlite::push_indexed(&mut script, id);
            }
            match self {
                Store::Sqlite(s) => {
                    let mut tx = s.pool.begin_with("BEGIN IMMEDIATE").await?;
                    script.execute(&mut tx).await?;
                    tx.commit().await?;
                }
                Store::Postgres(s) => {
                    let mut tx = s.pool.begin().await?;
                    postgres::execute_script(&mut tx, script).await?;
                    tx.commit().await?;
                }
            }
            done += rows.len() as u64;
        }
        if done > 0 {
            tracing::info!(cases = done, "cases put into the search index");
        }
        // Purged shells hold nothing to search.
        const SHELLS: &str = "UPDATE cases SET terms_indexed = 1 WHERE terms_indexed = 0";
        dispatch!(self, s => {
            sqlx::query(SHELLS).execute(&s.pool).await?.rows_affected()
        });
        Ok(done)
    }

    /// Opens the store `[store]` names (`kind`: the SQLite file, or PostgreSQL at `url`) and
    /// brings its schema up to date.
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        match settings.kind {
            StoreKind::Sqlite => Store::open_sqlite(&settings.sqlite).await,
            StoreKind::Postgres => Store::open_postgres(&settings.url).await,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// The database engine's version (`SELECT sqlite_version()`, `SHOW server_version`).
    pub async fn server_version(&self) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(s) => Ok(sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&s.read)
                .await?),
            Store::Postgres(s) => s.server_version().await,
        }
    }

    /// Whether an email from this source reference is already recorded (a replay).
    pub async fn source_recorded(&self, source_ref: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => {
            let row = sqlx::query("SELECT 1 FROM messages WHERE source_ref = $1")
                .bind(source_ref)
                .fetch_optional(&s.pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// The recorded outcome (processed | ignored | quarantined) of a source reference, if any.
    pub async fn source_outcome(&self, source_ref: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => {
            Ok(
                sqlx::query_scalar("SELECT outcome FROM messages WHERE source_ref = $1")
                    .bind(source_ref)
                    .fetch_optional(&s.pool)
                    .await?,
            )
        })
    }

    /// Records one email with its cases and replies in one transaction. A Message-ID that was
    /// processed before makes the email an ignored `duplicate`.
    pub async fn record(
        &self,
        mail: &MailRecord,
        cases: &[CheckedCase],
        render: &RenderReply<'_>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        dispatch!(self, s => s.record(mail, cases, render, now_ms).await)
    }

    pub async fn due_replies(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.due_replies(now_ms, limit).await)
    }

    /// Takes up to `limit` due replies, oldest first, for this store instance to send: each
    /// is claimed for `claim_ms` and no other instance (nor a second call) gets it meanwhile,
    /// unless it is settled first (`reply_sent`, `reply_retry`, `reply_failed`, `reply_held`
    /// end the claim). A claim left by an instance that died runs out, and the reply is taken
    /// again (with its stable Message-ID). PostgreSQL takes them with `FOR UPDATE SKIP LOCKED`.
    /// A consistent copy of the whole SQLite store in a new file (`VACUUM INTO`), taken while
    /// the daemon runs. PostgreSQL has its own tools (pg_dump).
    pub async fn backup_to(&self, file: &std::path::Path) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.backup_to(file).await,
            Store::Postgres(_) => Err(StoreError::Unsupported(
                "backup copies a SQLite store; back up PostgreSQL with pg_dump",
            )),
        }
    }

    /// This store as used by the instance `name` (`[instance] name`): its outbox claims are
    /// written as `name/<host>:<pid>:<random>`, so that the instance, restarted, knows the
    /// claims of its earlier run (see `drop_own_stale_claims`).
    pub fn named(mut self, name: &str) -> Store {
        let holder = format!("{name}/{}", new_holder());
        match &mut self {
            Store::Sqlite(s) => s.holder = holder,
            Store::Postgres(s) => s.holder = holder,
        }
        self
    }

    /// At a daemon's start, drops the outbox claims its earlier run left (killed mid-pass), so
    /// that those replies go out at once rather than when the claims run out
    /// (`OUTBOX_CLAIM_MS`). On SQLite one daemon sends from one file: every claim is its own.
    /// On PostgreSQL the claims of the same instance name (see `named`) from another run;
    /// other instances' claims run out.
    pub async fn drop_own_stale_claims(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.drop_claims().await,
            Store::Postgres(s) => s.drop_claims_of_earlier_runs().await,
        }
    }

    /// Drops this store's own claims on pending replies. The outbox calls it as a pass
    /// begins, when nothing of this instance is in flight: a claim left by an earlier pass
    /// (its store call failed, say while the database was down) would otherwise keep its
    /// reply waiting until the claim runs out.
    pub async fn drop_my_claims(&self) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE status = 'pending' AND claimed_by = $1";
        Ok(dispatch!(self, s => {
            sqlx::query(SQL).bind(&s.holder).execute(&s.pool).await?.rows_affected()
        }))
    }

    /// Clears the dead row versions the outbox's updates leave (PostgreSQL: `VACUUM
    /// (ANALYZE)` of the outbox and its delivery attempts, which also keeps the planner's
    /// figures for them current), so that its hot paths do not depend on the server's
    /// autovacuum. `SKIP_LOCKED`: when another instance is at it, that is enough. SQLite
    /// rewrites rows in place: nothing to do.
    pub async fn tidy_outbox(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(s) => {
                sqlx::raw_sql("VACUUM (ANALYZE, SKIP_LOCKED) outbox, delivery_attempts")
                    .execute(&s.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Takes up to `limit` due replies for this instance (claimed for `claim_ms`).
    pub async fn take_due_replies(
        &self,
        now_ms: i64,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.take_due_replies(now_ms, limit, claim_ms).await)
    }

    /// Records that a reply is being handed to the SMTP server: called after the whole
    /// message is written and before SMTP's final `.`. From here on the reply is `sent`
    /// (`sending_at` marks that the server's answer is not recorded yet) and no instance takes
    /// it again; `reply_sent` records the answer, `reply_retry`/`reply_failed` a refusal, and
    /// `reply_in_doubt` a missing answer.
    /// Only under this instance's claim: false when the reply is no longer pending and
    /// claimed by this instance (another took it over after the claim ran out).
    pub async fn reply_handed_over(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        // The claim's holder stays: it tells whose answer is awaited (`hold_replies_in_doubt`).
        const SQL: &str = "UPDATE outbox SET status = 'sent', sent_at = $2, sending_at = $2,
                 claimed_until = NULL
             WHERE id = $1 AND status = 'pending' AND claimed_by = $3";
        let done = dispatch!(self, s => {
            sqlx::query(SQL).bind(id).bind(now_ms).bind(&s.holder).execute(&s.pool).await?.rows_affected()
        });
        Ok(done == 1)
    }

    pub async fn reply_sent(&self, id: &str, now_ms: i64, detail: &str) -> Result<(), StoreError> {
        self.replies_sent(&[(id.to_string(), detail.to_string())], now_ms)
            .await
    }

    /// Marks several delivered replies (id, delivery note) as sent in one transaction.
    pub async fn replies_sent(
        &self,
        sent: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.replies_sent(sent, now_ms).await)
    }

    /// A failed attempt recorded: retried later (`next_ms`) or, `give_up`, failed. Only a
    /// reply still awaiting its answer changes (see [`AWAITING_ANSWER`]): a late refusal
    /// leaves one that another instance held in doubt, or that staff withdrew, as it is.
    async fn reply_not_sent(
        &self,
        id: &str,
        now_ms: i64,
        detail: &str,
        next_ms: Option<i64>,
        give_up: bool,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => {
            let mut tx = s.pool.begin().await?;
            sqlx::query("INSERT INTO delivery_attempts (id, outbox_id, at, ok, detail) VALUES ($1, $2, $3, 0, $4)")
                .bind(new_id())
                .bind(id)
                .bind(now_ms)
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            if give_up {
                sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE outbox SET status = 'failed', sent_at = NULL, attempts = attempts + 1, last_error = $2, claimed_by = NULL, claimed_until = NULL, sending_at = NULL WHERE id = $1 AND {AWAITING_ANSWER}")))
                    .bind(id)
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE outbox SET status = 'pending', sent_at = NULL, attempts = attempts + 1, last_error = $2, next_attempt_at = $3, claimed_by = NULL, claimed_until = NULL, sending_at = NULL WHERE id = $1 AND {AWAITING_ANSWER}")))
                    .bind(id)
                    .bind(detail)
                    .bind(next_ms.unwrap_or(now_ms))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn reply_retry(
        &self,
        id: &str,
        now_ms: i64,
        error: &str,
        next_ms: i64,
    ) -> Result<(), StoreError> {
        self.reply_not_sent(id, now_ms, error, Some(next_ms), false)
            .await
    }

    /// The open orders (queued, ordered at Telia, card ready) of the person with this
    /// personnummer (12 digits) at the unit with this HSA-id, oldest first: a second order
    /// would order a second card (SPEC §4.3 `open_order_exists`). Found through the search
    /// index, where a case's personnummer is one term.
    pub async fn open_orders(&self, pnr12: &str, unit: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String, String)> = dispatch!(self, s => sqlx::query_as(open_orders::SQL).bind(pnr12).fetch_all(&s.pool).await?);
        Ok(open_orders::at_unit(rows, unit))
    }

    /// Makes the replies waiting for a retry due now (the sink answers again after an
    /// outage): they need not wait out their back-off. Returns how many.
    pub async fn retry_waiting_now(&self, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE outbox SET next_attempt_at = $1
             WHERE status = 'pending' AND attempts > 0 AND next_attempt_at > $1";
        Ok(
            dispatch!(self, s => sqlx::query(SQL).bind(now_ms).execute(&s.pool).await?.rows_affected()),
        )
    }

    pub async fn reply_failed(&self, id: &str, now_ms: i64, error: &str) -> Result<(), StoreError> {
        self.reply_not_sent(id, now_ms, error, None, true).await
    }

    /// Message-IDs of IMAP mail whose personal data is erased here but which may still be on
    /// the server (retention removes it there too).
    pub async fn expired_on_server(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.expired_on_server().await)
    }

    /// Notes that the server no longer holds these messages.
    pub async fn erased_on_server(
        &self,
        message_ids: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.erased_on_server(message_ids, now_ms).await)
    }

    /// Sends a case's held replies after all (staff decide the recipient is no robot): they
    /// become pending again, past the rate limit. `reply`: only that one of them. Returns how
    /// many.
    pub async fn release_held(
        &self,
        case_id: &str,
        reply: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.settle_held(case_id, reply, actor, now_ms, SettleHeld::Send)
            .await
    }

    /// What staff do with a case's held replies (`reply`: only that one): send them after
    /// all (`release_held`), or close those held in doubt that did arrive (staff found them
    /// in the relay's log): they become sent and are never sent again; replies held by the
    /// rate limit are left alone then (they were never sent). Returns how many.
    pub async fn settle_held(
        &self,
        case_id: &str,
        reply: Option<&str>,
        actor: &str,
        now_ms: i64,
        how: SettleHeld,
    ) -> Result<usize, StoreError> {
        dispatch!(self, s => s.settle_held(case_id, reply, actor, now_ms, how).await)
    }

    /// Sends a case's failed replies again (`reply`: only that one of them), after staff fixed
    /// the cause: each becomes pending once (a second call finds it no longer failed), is
    /// audited (`reply_resent`, who, failed → pending) and goes out past the rate limit.
    /// Returns the ids.
    pub async fn resend_failed(
        &self,
        case_id: &str,
        reply: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str =
            "UPDATE outbox SET status = 'pending', released_by = $2, next_attempt_at = $3,
                 claimed_by = NULL, claimed_until = NULL, sending_at = NULL, sent_at = NULL
             WHERE case_id = $1 AND status = 'failed' AND id = COALESCE($4, id) RETURNING id";
        macro_rules! resend {
            ($s:ident, $audit:path) => {{
                let mut tx = $s.pool.begin().await?;
                let mut ids: Vec<String> = sqlx::query_scalar(SQL)
                    .bind(case_id)
                    .bind(actor)
                    .bind(now_ms)
                    .bind(reply)
                    .fetch_all(&mut *tx)
                    .await?;
                ids.sort();
                for id in &ids {
                    $audit(
                        &mut tx,
                        case_id,
                        now_ms,
                        actor,
                        "reply_resent",
                        Some("failed"),
                        Some("pending"),
                        Some(id),
                    )
                    .await?;
                }
                tx.commit().await?;
                ids
            }};
        }
        Ok(match self {
            Store::Sqlite(s) => resend!(s, sqlite::audit),
            Store::Postgres(s) => resend!(s, postgres::audit),
        })
    }

    /// Marks a reply as held back by the rate limit: recorded, visible, not sent.
    pub async fn reply_held(&self, id: &str, now_ms: i64, why: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.hold_reply(id, now_ms, why, "pending").await)?;
        Ok(())
    }

    /// Holds a reply whose delivery is in doubt: handed to the SMTP server (its final `.`
    /// may have been written) with no answer recorded. It may have been delivered, so it is
    /// never sent again by itself: staff check the relay's log and release it (sent again)
    /// or close it (`settle_held`). False when it was not awaiting an answer (answered
    /// meanwhile).
    pub async fn reply_in_doubt(
        &self,
        id: &str,
        now_ms: i64,
        handed_over_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let at = chrono::DateTime::from_timestamp_millis(handed_over_at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let why = format!("{IN_DOUBT}handed to the SMTP server at {at} without a recorded answer; it may have been delivered");
        let held = dispatch!(self, s => s.hold_reply(id, now_ms, &why, "sent").await)?;
        if held {
            // It was handed over once: that is an attempt, with no answer.
            dispatch!(self, s => {
                let mut tx = s.pool.begin().await?;
                sqlx::query("INSERT INTO delivery_attempts (id, outbox_id, at, ok, detail) VALUES ($1, $2, $3, 0, $4)")
                    .bind(new_id())
                    .bind(id)
                    .bind(handed_over_at_ms)
                    .bind(&why)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            });
        }
        Ok(held)
    }

    /// Holds (`reply_in_doubt`) the replies handed over whose answer no live sender will
    /// record: those of an earlier run of this instance (killed after the hand-over), and
    /// anyone's handed over at or before `handed_over_before_ms`. Returns their ids.
    pub async fn hold_replies_in_doubt(
        &self,
        handed_over_before_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT id, sending_at FROM outbox
             WHERE status = 'sent' AND sending_at IS NOT NULL
               AND (sending_at <= $1
                    OR (claimed_by IS NOT NULL AND claimed_by <> $3
                        AND substr(claimed_by, 1, length(CAST($2 AS TEXT))) = $2))
             ORDER BY sending_at, id";
        // The daemon's holders are `name/…` (see `named`): another `name/…` is an earlier run
        // of this instance. Unnamed (the command line) knows of no earlier run: the prefix is
        // its own holder, which the query excludes.
        let me = dispatch!(self, s => s.holder.clone());
        let earlier_runs = match me.split_once('/') {
            Some((name, _)) => format!("{name}/"),
            None => me.clone(),
        };
        let rows: Vec<(String, i64)> = dispatch!(self, s => {
            sqlx::query_as(SQL)
                .bind(handed_over_before_ms)
                .bind(&earlier_runs)
                .bind(&me)
                .fetch_all(&s.pool)
                .await?
        });
        let mut held = Vec::new();
        for (id, at) in rows {
            if self.reply_in_doubt(&id, now_ms, at).await? {
                held.push(id);
            }
        }
        Ok(held)
    }

    /// How many replies to `recipient` (any case) were sent at or after `since_ms`.
    pub async fn replies_sent_to(&self, recipient: &str, since_ms: i64) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox
             WHERE lower(recipient) = lower($1) AND status = 'sent' AND sent_at >= $2
               AND automatic = 1";
        Ok(dispatch!(self, s => {
            sqlx::query_scalar(SQL).bind(recipient).bind(since_ms).fetch_one(&s.pool).await?
        }))
    }

    pub async fn imap_position(&self, mailbox: &str) -> Result<Option<ImapPosition>, StoreError> {
        const SQL: &str = "SELECT uid_validity, last_uid FROM imap_state WHERE mailbox = $1";
        let row: Option<(i64, i64)> = dispatch!(self, s => {
            sqlx::query_as(SQL).bind(mailbox).fetch_optional(&s.pool).await?
        });
        let Some((validity, last)) = row else {
            return Ok(None);
        };
        let conv = |v: i64| {
            u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("imap_state: {v} is not a UID")))
        };
        Ok(Some(ImapPosition {
            uid_validity: conv(validity)?,
            last_uid: conv(last)?,
        }))
    }

    pub async fn set_imap_position(
        &self,
        mailbox: &str,
        pos: ImapPosition,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO imap_state (mailbox, uid_validity, last_uid, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox) DO UPDATE SET uid_validity = $2, last_uid = $3, updated_at = $4";
        dispatch!(self, s => {
            sqlx::query(SQL)
                .bind(mailbox)
                .bind(i64::from(pos.uid_validity))
                .bind(i64::from(pos.last_uid))
                .bind(now_ms)
                .execute(&s.pool)
                .await?;
        });
        Ok(())
    }

    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>, StoreError> {
        dispatch!(self, s => s.list_cases(filter).await)
    }

    /// How many cases `filter` selects, whatever its limit and offset.
    pub async fn count_cases(&self, filter: &CaseFilter) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_cases(filter).await)
    }

    /// The unit HSA-ids (upper-case, sorted) of the cases `filter` selects, its own unit
    /// aside: the choices of a list's unit filter.
    pub async fn case_units(&self, filter: &CaseFilter) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.case_units(filter).await)
    }

    /// A case with its email, replies, audit trail (in the order it was written) and
    /// delivery reports.
    pub async fn case_detail(&self, id: &str) -> Result<Option<CaseDetail>, StoreError> {
        const CASE: &str = "SELECT c.id, c.kind, c.decision, c.state, c.fields, c.reasons, c.warnings, c.attachment, c.pages, c.created_at,
                    m.source_ref, m.message_id, m.sender, m.subject, m.headers,
                    c.manager_mail, c.holder_mail, c.card_number, c.updated_at, c.purged_at, m.email_date,
                    c.attachment_index, m.content_hash, m.purged_at AS message_purged_at,
                    c.verify, c.field_boxes, c.message AS message_row, c.kiv_name
             FROM cases c JOIN messages m ON m.id = c.message WHERE c.id = $1";
        const REPLIES: &str =
            "SELECT id, recipient, subject, status, attempts, sent_at, last_error, raw
             FROM outbox WHERE case_id = $1 ORDER BY id";
        const BOUNCES: &str = "SELECT b.at, b.outbox_id, b.action, b.status, m.sender, m.subject
             FROM bounces b JOIN messages m ON m.id = b.message WHERE b.case_id = $1 ORDER BY b.at, b.id";
        // Rows of one millisecond in the order they were written: SQLite's rowid, a sequence
        // in PostgreSQL.
        let audit = format!(
            "SELECT at, actor, action, before, after, comment FROM audit WHERE case_id = $1 ORDER BY at, {}",
            match self {
                Store::Sqlite(_) => "rowid",
                Store::Postgres(_) => "seq",
            }
        );
        dispatch!(self, s => {
            let case = sqlx::query_as::<_, CaseRow>(CASE).bind(id).fetch_optional(&s.read).await?;
            let Some(case) = case else { return Ok(None) };
            let replies = sqlx::query_as::<_, ReplyRow>(REPLIES).bind(id).fetch_all(&s.read).await?;
            let audit = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(audit))
                .bind(id)
                .fetch_all(&s.read)
                .await?;
            let bounces = sqlx::query_as::<_, BounceRow>(BOUNCES).bind(id).fetch_all(&s.read).await?;
            Ok(Some(CaseDetail {
                case,
                replies,
                audit,
                bounces,
            }))
        })
    }

    /// Applies staff's verification of a case atomically (see `crate::casework::verification`).
    /// `Conflict` when the case is no longer in `v.from`. Returns the reply's outbox id.
    pub async fn apply_verification(&self, v: &Verification) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.apply_verification(v).await)
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        dispatch!(self, s => {
            Ok(sqlx::query_as::<_, Counts>(
                "SELECT (SELECT COUNT(*) FROM messages) AS messages, (SELECT COUNT(*) FROM cases) AS cases,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS outbox_pending,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'sent') AS outbox_sent,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'failed') AS outbox_failed,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'held') AS outbox_held,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND sending_at IS NOT NULL) AS outbox_awaiting,
                    (SELECT COUNT(*) FROM kiv_waiting) AS kiv_waiting",
            )
            .fetch_one(&s.pool)
            .await?)
        })
    }

    /// Notes that an email waits for KIV; the next try is `initial_ms` × 2^(tries so far),
    /// capped at `max_ms`. Returns how many tries it has had.
    pub async fn mark_waiting(
        &self,
        mail: &WaitingMail,
        now_ms: i64,
        initial_ms: u64,
        max_ms: u64,
    ) -> Result<i64, StoreError> {
        dispatch!(self, s => s.mark_waiting(mail, now_ms, initial_ms, max_ms).await)
    }

    /// Forgets a waiting email that will not be tried again here (`process` gives up at once).
    pub async fn clear_waiting(&self, source_ref: &str) -> Result<(), StoreError> {
        dispatch!(self, s => {
            sqlx::query("DELETE FROM kiv_waiting WHERE source_ref = $1")
                .bind(source_ref)
                .execute(&s.pool)
                .await?;
            Ok(())
        })
    }

    /// KIV answers again: every waiting email is due now (not at its next back-off slot).
    /// Returns how many were brought forward.
    pub async fn waiting_due_now(&self, now_ms: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => {
            Ok(sqlx::query("UPDATE kiv_waiting SET next_attempt_at = $1 WHERE next_attempt_at > $1")
                .bind(now_ms)
                .execute(&s.pool)
                .await?
                .rows_affected())
        })
    }

    /// Emails waiting for KIV, oldest first.
    pub async fn list_waiting(&self) -> Result<Vec<WaitingRow>, StoreError> {
        dispatch!(self, s => {
            Ok(sqlx::query_as::<_, WaitingRow>(
                "SELECT source_ref, message_id, sender, subject, first_seen_at, last_attempt_at, next_attempt_at, attempts, last_error
                 FROM kiv_waiting ORDER BY first_seen_at, source_ref",
            )
            .fetch_all(&s.pool)
            .await?)
        })
    }

    /// Source references of waiting emails whose next try is later than `now_ms`: a source
    /// skips these until then.
    pub async fn waiting_not_due(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        dispatch!(self, s => s.waiting_not_due(now_ms).await)
    }
}

/// The Message-ID of reply `reply_id` (`<case>-1`) to the email stored as `message_row`: stable,
/// so that a resend after a crash is the same message. Its domain is a placeholder: the reply
/// is built under the domain of the office's own address (`pipeline::reply::message_id_under`).
pub fn reply_message_id(reply_id: &str, message_row: &str) -> String {
    format!(
        "<{}.{}@tjid-intake>",
        reply_id.to_lowercase(),
        &message_row[..message_row.len().min(12)]
    )
}
