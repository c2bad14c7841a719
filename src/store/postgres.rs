//! PostgreSQL backend, for production where two or three instances on different hosts share
//! one database. Every promise of the SQLite store holds across instances: one transaction per
//! email (a replay of a source reference, or of a Message-ID, records nothing twice), case
//! numbers without gaps or doubles, and an outbox reply taken by one instance only
//! (`FOR UPDATE SKIP LOCKED` plus a claim that expires if its instance dies).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::sqlite::{push_audit, push_cases, year_of, Arg, Script};
use super::{new_id, MailRecord, OutboxRow, Recorded, RenderReply, StoreError, WaitingMail};
use crate::case::{CheckedCase, IgnoreReason};

/// Namespaces of the transaction-level advisory locks (`pg_advisory_xact_lock(ns, key)`).
const LOCK_MESSAGE_ID: i32 = 1;
const LOCK_PURGE: i32 = 2;
/// A person at a unit, while an email's orders are checked for an open order and recorded.
const LOCK_OPEN_ORDER: i32 = 3;

#[derive(Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
    /// Where the staff pages read: the same pool (PostgreSQL runs readers side by side); the
    /// SQLite store has read connections of its own here.
    pub(super) read: PgPool,
    /// Names this store instance in the outbox claims (`claimed_by`).
    pub(super) holder: String,
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                if userinfo.contains(':') {
                    format!("{scheme}://{user}:***@{host}")
                } else {
                    format!("{scheme}://{userinfo}@{host}")
                }
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Runs a script's statements one after the other in the transaction (PostgreSQL prepares one
/// statement at a time).
pub(super) async fn execute_script(
    tx: &mut sqlx::PgConnection,
    script: Script,
) -> Result<(), StoreError> {
    for (sql, args) in script.statements {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::OptInt(v) => query.bind(v),
            };
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

impl PgStore {
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let open_error = |e| StoreError::Open {
            path: redact_url(url),
            source: e,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        // sqlx takes an advisory lock while it migrates: instances starting together wait.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            read: pool.clone(),
            pool,
            holder: super::new_holder(),
        })
    }

    /// The server's version, e.g. `15.20 (Debian 15.20-0+deb12u1)`.
    pub async fn server_version(&self) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SHOW server_version")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records one email in one transaction (READ COMMITTED), safe against other instances:
    /// - two copies of one email (same Message-ID, other source references) recorded at once
    ///   are serialised by an advisory lock on the Message-ID, so the second sees the first
    ///   and is ignored as a duplicate instead of answered twice;
    /// - the same source reference recorded twice at once: the unique index makes the second
    ///   insert wait, then do nothing (`ON CONFLICT DO NOTHING`): `AlreadyRecorded`;
    /// - case numbers come from the year's counter row, incremented with `UPDATE … RETURNING`
    ///   in this transaction. The row stays locked until commit, so concurrent recordings take
    ///   numbers one after the other, and a rollback gives the numbers back. A SEQUENCE would
    ///   not: `nextval` is never rolled back, and a failed transaction would leave a gap in
    ///   the case numbers (which staff and the card office read as a lost case). The counter
    ///   is taken last, just before the cases are written, to hold its lock briefly.
    /// - two orders for the same person at the same unit recorded at once (SPEC §4.3
    ///   `open_order_exists`) are serialised by an advisory lock on the person and unit,
    ///   taken before the open orders are read: the second waits for the first's commit, sees
    ///   its order and is flagged.
    pub async fn record(
        &self,
        mail: &MailRecord,
        cases: &[CheckedCase],
        render: &RenderReply<'_>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let year = year_of(now_ms);
        let mut tx = self.pool.begin().await?;
        if let Some(message_id) = &mail.message_id {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(LOCK_MESSAGE_ID)
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE source_ref = $1) AS replay,
                    ($2::text IS NOT NULL AND EXISTS (SELECT 1 FROM messages
                        WHERE message_id = $2 AND outcome <> 'quarantined')) AS duplicate",
        )
        .bind(&mail.source_ref)
        .bind(&mail.message_id)
        .fetch_one(&mut *tx)
        .await?;
        if row.try_get::<bool, _>("replay")? {
            return Ok(Recorded::AlreadyRecorded);
        }
        let ignored = if row.try_get::<bool, _>("duplicate")? {
            Some(IgnoreReason::Duplicate)
        } else {
            mail.ignored
        };
        let outcome = match (ignored, &mail.error) {
            (Some(_), _) => "ignored",
            (None, Some(_)) => "quarantined",
            (None, None) => "processed",
        };
        let message_row = new_id();
        let inserted = sqlx::query(
            "INSERT INTO messages (id, source_ref, message_id, content_hash, received_at, email_date, sender, subject, headers, outcome, ignored_reason, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (source_ref) DO NOTHING",
        )
        .bind(&message_row)
        .bind(&mail.source_ref)
        .bind(&mail.message_id)
        .bind(&mail.content_hash)
        .bind(mail.received_at)
        .bind(&mail.email_date)
        .bind(&mail.sender)
        .bind(&mail.subject)
        .bind(&mail.headers)
        .bind(outcome)
        .bind(ignored.map(|r| r.as_str().to_string()))
        .bind(&mail.error)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another instance recorded this source reference meanwhile.
            return Ok(Recorded::AlreadyRecorded);
        }
        let mut script = Script::default();
        let result = match (ignored, &mail.error) {
            (Some(reason), _) => Recorded::Ignored(reason),
            (None, Some(_)) => Recorded::Quarantined,
            (None, None) => {
                // SPEC §4.3: a second open order for one person at one unit is flagged; the
                // lock per person and unit makes a recording of the same person on another
                // instance wait for this one's commit, and then see its order.
                let today = super::open_orders::today(now_ms);
                let keys = super::open_orders::keys(cases, today);
                let open =
                    super::open_orders::open_in_postgres(&mut tx, keys, LOCK_OPEN_ORDER).await?;
                let (cases, open_order_exists) = super::open_orders::flag(cases, &open, today);
                let cases = cases.as_ref();
                let case_ids = if cases.is_empty() {
                    Vec::new()
                } else {
                    let n = cases.len() as i64;
                    let last: i64 = sqlx::query_scalar(
                        "INSERT INTO case_numbers (year, last) VALUES ($1, $2)
                         ON CONFLICT (year) DO UPDATE SET last = case_numbers.last + EXCLUDED.last
                         RETURNING last",
                    )
                    .bind(year)
                    .bind(n)
                    .fetch_one(&mut *tx)
                    .await?;
                    push_cases(
                        &mut script,
                        (&message_row, mail),
                        cases,
                        year,
                        last - n,
                        render,
                        now_ms,
                    )?
                };
                Recorded::Processed {
                    case_ids,
                    open_order_exists,
                }
            }
        };
        script.push(
            "DELETE FROM kiv_waiting WHERE source_ref = $1",
            [Arg::Text(Some(mail.source_ref.clone()))],
        );
        execute_script(&mut tx, script).await?;
        if let (Some(IgnoreReason::Bounce), Some(link)) = (ignored, &mail.bounce) {
            link_bounce(&mut tx, &message_row, link, now_ms).await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    pub async fn mark_waiting(
        &self,
        mail: &WaitingMail,
        now_ms: i64,
        initial_ms: u64,
        max_ms: u64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before: i64 =
            sqlx::query("SELECT attempts FROM kiv_waiting WHERE source_ref = $1 FOR UPDATE")
                .bind(&mail.source_ref)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("attempts"))
                .transpose()?
                .unwrap_or(0);
        let delay = crate::clock::backoff_ms(initial_ms, max_ms, before) as i64;
        let attempts: i64 = sqlx::query_scalar(
            "INSERT INTO kiv_waiting (source_ref, message_id, sender, subject, first_seen_at, last_attempt_at, next_attempt_at, attempts, last_error)
             VALUES ($1, $2, $3, $4, $5, $5, $6, 1, $7)
             ON CONFLICT (source_ref) DO UPDATE SET last_attempt_at = $5, next_attempt_at = $6,
                 attempts = kiv_waiting.attempts + 1, last_error = $7
             RETURNING attempts",
        )
        .bind(&mail.source_ref)
        .bind(&mail.message_id)
        .bind(&mail.sender)
        .bind(&mail.subject)
        .bind(now_ms)
        .bind(now_ms + delay)
        .bind(&mail.error)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(attempts)
    }

    pub async fn waiting_not_due(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT source_ref FROM kiv_waiting WHERE next_attempt_at > $1")
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn due_replies(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(
            "SELECT id, case_id, sender, recipient, raw, attempts, created_at, released_by, automatic FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Drops the claims on pending replies made by an earlier run of this instance (same
    /// name before the `/` of the holder, another holder). See `Store::drop_own_stale_claims`.
    pub async fn drop_claims_of_earlier_runs(&self) -> Result<u64, StoreError> {
        let Some((instance, _)) = self.holder.split_once('/') else {
            return Ok(0);
        };
        let done = sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE status = 'pending' AND left(claimed_by, char_length($1)) = $1
               AND claimed_by <> $2",
        )
        .bind(format!("{instance}/"))
        .bind(&self.holder)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Takes due replies for this instance (see `Store::take_due_replies`). The inner
    /// `FOR UPDATE SKIP LOCKED` passes over rows another instance is claiming right now; a row
    /// it claimed and committed is re-checked by PostgreSQL against the new `claimed_until`
    /// and left out. So two instances never take the same reply while its claim runs.
    pub async fn take_due_replies(
        &self,
        now_ms: i64,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows = sqlx::query_as::<_, OutboxRow>(
            "UPDATE outbox o SET claimed_by = $3, claimed_until = $4
             FROM (SELECT id FROM outbox
                   WHERE status = 'pending' AND next_attempt_at <= $1
                     AND (claimed_until IS NULL OR claimed_until <= $1)
                   ORDER BY created_at, id LIMIT $2
                   FOR UPDATE SKIP LOCKED) due
             WHERE o.id = due.id
             RETURNING o.id, o.case_id, o.sender, o.recipient, o.raw, o.attempts, o.created_at, o.released_by, o.automatic",
        )
        .bind(now_ms)
        .bind(limit)
        .bind(&self.holder)
        .bind(now_ms.saturating_add(claim_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(rows)
    }

    pub async fn replies_sent(
        &self,
        sent: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        let attempts: Vec<String> = sent.iter().map(|_| new_id()).collect();
        let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
        let details: Vec<String> = sent.iter().map(|(_, d)| d.clone()).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (id, outbox_id, at, ok, detail)
             SELECT a, o, $4, 1, d FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(a, o, d)",
        )
        .bind(&attempts)
        .bind(&ids)
        .bind(&details)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL,
                 claimed_by = NULL, claimed_until = NULL, sending_at = NULL
             WHERE id = ANY($1) AND {}",
            super::AWAITING_ANSWER
        )))
        .bind(&ids)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn expired_on_server(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT message_id FROM messages
             WHERE purged_at IS NOT NULL AND server_erased_at IS NULL
               AND source_ref LIKE 'imap:%' AND message_id IS NOT NULL
             ORDER BY message_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn erased_on_server(
        &self,
        message_ids: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET server_erased_at = $2
             WHERE purged_at IS NOT NULL AND server_erased_at IS NULL AND message_id = ANY($1)",
        )
        .bind(message_ids.to_vec())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn apply_verification(
        &self,
        v: &super::Verification,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The conditional UPDATE locks the case row: a second verification waits, then finds
        // the state moved and is refused.
        let moved = sqlx::query(
            "UPDATE cases SET fields = $3, reasons = $4, warnings = $5, verify = $6,
                    decision = COALESCE($7, decision), state = $8, manager_mail = $9,
                    holder_mail = $10, updated_at = $11
             WHERE id = $1 AND state = $2 AND purged_at IS NULL",
        )
        .bind(&v.case_id)
        .bind(&v.from)
        .bind(&v.fields)
        .bind(&v.reasons)
        .bind(&v.warnings)
        .bind(&v.verify)
        .bind(&v.decision)
        .bind(&v.to)
        .bind(&v.manager_mail)
        .bind(&v.holder_mail)
        .bind(v.at)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "{} is no longer in state {}",
                v.case_id, v.from
            )));
        }
        let script = super::sqlite::verification_script(v)?;
        execute_script(&mut tx, script).await?;
        tx.commit().await?;
        Ok(v.reply.as_ref().map(|(id, _)| id.clone()))
    }

    /// Serialises retention between instances for the rest of the transaction.
    pub(super) async fn lock_purge(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(LOCK_PURGE)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

pub(super) async fn insert_reply(
    tx: &mut sqlx::PgConnection,
    reply_id: &str,
    case_id: &str,
    reply: &crate::case::RenderedReply,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut script = Script::default();
    super::sqlite::push_reply(
        &mut script,
        reply_id,
        case_id,
        reply,
        now_ms,
        super::ReplyTrigger::Staff,
    )?;
    execute_script(tx, script).await
}

/// As the SQLite one: links a delivery report to the case it is about.
async fn link_bounce(
    tx: &mut sqlx::PgConnection,
    message_row: &str,
    link: &crate::bounce::BounceLink,
    now_ms: i64,
) -> Result<(), StoreError> {
    let known = sqlx::query("SELECT 1 FROM cases WHERE id = $1")
        .bind(&link.case_id)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Ok(());
    }
    let reply: Option<String> = match &link.reply_id {
        Some(r) => {
            sqlx::query_scalar("SELECT id FROM outbox WHERE id = $1 AND case_id = $2")
                .bind(r)
                .bind(&link.case_id)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
    sqlx::query("INSERT INTO bounces (id, case_id, outbox_id, message, action, status, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(new_id())
        .bind(&link.case_id)
        .bind(&reply)
        .bind(message_row)
        .bind(&link.action)
        .bind(&link.status)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    let what = super::sqlite::bounce_audit_text(reply.as_deref(), link);
    audit(
        tx,
        &link.case_id,
        now_ms,
        "system",
        "bounce",
        None,
        None,
        Some(&what),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn audit(
    tx: &mut sqlx::PgConnection,
    case_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    before: Option<&str>,
    after: Option<&str>,
    comment: Option<&str>,
) -> Result<(), StoreError> {
    let mut script = Script::default();
    push_audit(
        &mut script,
        (case_id, at, actor, action, before, after, comment),
    );
    execute_script(tx, script).await
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_never_shows_in_messages() {
        assert_eq!(
            redact_url("postgres://tjid:s3cr@t@db:5432/intake"),
            "postgres://tjid:***@db:5432/intake"
        );
        assert_eq!(
            redact_url("postgres://tjid@db/intake"),
            "postgres://tjid@db/intake"
        );
        assert_eq!(redact_url("postgres://db/intake"), "postgres://db/intake");
    }
}
