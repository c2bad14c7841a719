//! SQLite backend (the embedded default). WAL journal with `synchronous = NORMAL`: a commit
//! survives a crash of the process (the promise the source acknowledgement relies on); only a
//! power loss may take the last commits, and then the unacknowledged mail is read again.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    AuditRow, BounceRow, CaseDetail, CaseFilter, CaseRow, CaseSummary, Counts, ImapPosition,
    MailRecord, OutboxRow, Recorded, RenderReply, ReplyRow, StoreError, WaitingMail, WaitingRow,
};
use crate::case::{CheckedCase, IgnoreReason};

#[derive(Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: e,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        // One connection: SQLite has one writer anyway, and this keeps every write in order.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: e,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub async fn source_recorded(&self, source_ref: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM messages WHERE source_ref = $1")
            .bind(source_ref)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn source_outcome(&self, source_ref: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT outcome FROM messages WHERE source_ref = $1")
                .bind(source_ref)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn record(
        &self,
        mail: &MailRecord,
        cases: &[CheckedCase],
        render: &RenderReply<'_>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.pool.begin().await?;
        if sqlx::query("SELECT 1 FROM messages WHERE source_ref = $1")
            .bind(&mail.source_ref)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Ok(Recorded::AlreadyRecorded);
        }
        let duplicate = match &mail.message_id {
            Some(id) => sqlx::query(
                "SELECT 1 FROM messages WHERE message_id = $1 AND outcome <> 'quarantined' LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some(),
            None => false,
        };
        let ignored = if duplicate {
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
        sqlx::query(
            "INSERT INTO messages (id, source_ref, message_id, content_hash, received_at, email_date, sender, subject, headers, outcome, ignored_reason, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .bind(ignored.map(|r| r.as_str()))
        .bind(&mail.error)
        .execute(&mut *tx)
        .await?;

        if let (Some(IgnoreReason::Bounce), Some(link)) = (ignored, &mail.bounce) {
            link_bounce(&mut tx, &message_row, link, now_ms).await?;
        }

        let result = match (ignored, &mail.error) {
            (Some(reason), _) => Recorded::Ignored(reason),
            (None, Some(_)) => Recorded::Quarantined,
            (None, None) => {
                let mut case_ids = Vec::with_capacity(cases.len());
                for (position, case) in cases.iter().enumerate() {
                    let case_id = self.next_case_id(&mut tx, now_ms).await?;
                    insert_case(&mut tx, &message_row, position, case, &case_id, now_ms).await?;
                    audit(
                        &mut tx,
                        &case_id,
                        now_ms,
                        "system",
                        "created",
                        None,
                        Some(case.decision.as_str()),
                        None,
                    )
                    .await?;
                    let reply_id = format!("{case_id}-1");
                    let message_id = format!(
                        "<{}.{}@tjid-intake>",
                        reply_id.to_lowercase(),
                        &message_row[..12]
                    );
                    match render(case, &case_id, &message_id) {
                        Some(reply) => {
                            insert_reply(&mut tx, &reply_id, &case_id, &reply, now_ms).await?;
                        }
                        None => {
                            audit(
                                &mut tx,
                                &case_id,
                                now_ms,
                                "system",
                                "no_reply",
                                None,
                                None,
                                Some("no address to reply to"),
                            )
                            .await?;
                        }
                    }
                    case_ids.push(case_id);
                }
                Recorded::Processed { case_ids }
            }
        };
        // Whatever waited for KIV is now decided (or ignored, or quarantined): it waits no more.
        sqlx::query("DELETE FROM kiv_waiting WHERE source_ref = $1")
            .bind(&mail.source_ref)
            .execute(&mut *tx)
            .await?;
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
        let before: i64 = sqlx::query("SELECT attempts FROM kiv_waiting WHERE source_ref = $1")
            .bind(&mail.source_ref)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("attempts"))
            .transpose()?
            .unwrap_or(0);
        let exp = before.clamp(0, 30) as u32;
        let delay = initial_ms.saturating_mul(1u64 << exp).min(max_ms) as i64;
        sqlx::query(
            "INSERT INTO kiv_waiting (source_ref, message_id, sender, subject, first_seen_at, last_attempt_at, next_attempt_at, attempts, last_error)
             VALUES ($1, $2, $3, $4, $5, $5, $6, 1, $7)
             ON CONFLICT (source_ref) DO UPDATE SET last_attempt_at = $5, next_attempt_at = $6,
                 attempts = kiv_waiting.attempts + 1, last_error = $7",
        )
        .bind(&mail.source_ref)
        .bind(&mail.message_id)
        .bind(&mail.sender)
        .bind(&mail.subject)
        .bind(now_ms)
        .bind(now_ms + delay)
        .bind(&mail.error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(before + 1)
    }

    pub async fn clear_waiting(&self, source_ref: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kiv_waiting WHERE source_ref = $1")
            .bind(source_ref)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn list_waiting(&self) -> Result<Vec<WaitingRow>, StoreError> {
        Ok(sqlx::query_as::<_, WaitingRow>(
            "SELECT source_ref, message_id, sender, subject, first_seen_at, last_attempt_at, next_attempt_at, attempts, last_error
             FROM kiv_waiting ORDER BY first_seen_at, source_ref",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn waiting_not_due(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT source_ref FROM kiv_waiting WHERE next_attempt_at > $1")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("source_ref")
                    .map_err(StoreError::from)
            })
            .collect()
    }

    async fn next_case_id(
        &self,
        tx: &mut sqlx::SqliteConnection,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let year = chrono::DateTime::from_timestamp_millis(now_ms)
            .map(|d| d.format("%Y").to_string())
            .unwrap_or_else(|| "1970".into());
        let year_num: i64 = year.parse().unwrap_or(1970);
        let row = sqlx::query(
            "INSERT INTO case_numbers (year, last) VALUES ($1, 1)
             ON CONFLICT (year) DO UPDATE SET last = case_numbers.last + 1 RETURNING last",
        )
        .bind(year_num)
        .fetch_one(&mut *tx)
        .await?;
        let n: i64 = row.try_get("last")?;
        Ok(crate::case_id(year_num, n))
    }

    pub async fn due_replies(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(
            "SELECT id, case_id, sender, recipient, raw, attempts, created_at FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn reply_attempt(
        &self,
        id: &str,
        now_ms: i64,
        ok: bool,
        detail: &str,
        next_ms: Option<i64>,
        give_up: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO delivery_attempts (id, outbox_id, at, ok, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(new_id())
            .bind(id)
            .bind(now_ms)
            .bind(ok as i64)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        if ok {
            sqlx::query("UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL WHERE id = $1")
                .bind(id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        } else if give_up {
            sqlx::query("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(detail)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1")
                .bind(id)
                .bind(detail)
                .bind(next_ms.unwrap_or(now_ms))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn reply_held(&self, id: &str, now_ms: i64, why: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let case_id: Option<String> = sqlx::query_scalar(
            "UPDATE outbox SET status = 'held', last_error = $2 WHERE id = $1 AND status = 'pending' RETURNING case_id",
        )
        .bind(id)
        .bind(why)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(case_id) = case_id {
            audit(
                &mut tx,
                &case_id,
                now_ms,
                "system",
                "reply_held",
                Some("pending"),
                Some("held"),
                Some(why),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn replies_sent_to(&self, recipient: &str, since_ms: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE lower(recipient) = lower($1) AND status = 'sent' AND sent_at >= $2",
        )
        .bind(recipient)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn imap_position(&self, mailbox: &str) -> Result<Option<ImapPosition>, StoreError> {
        let row = sqlx::query("SELECT uid_validity, last_uid FROM imap_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let validity: i64 = row.try_get("uid_validity")?;
        let last: i64 = row.try_get("last_uid")?;
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
        sqlx::query(
            "INSERT INTO imap_state (mailbox, uid_validity, last_uid, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox) DO UPDATE SET uid_validity = $2, last_uid = $3, updated_at = $4",
        )
        .bind(mailbox)
        .bind(i64::from(pos.uid_validity))
        .bind(i64::from(pos.last_uid))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>, StoreError> {
        Ok(sqlx::query_as::<_, CaseSummary>(
            "SELECT c.id, c.kind, c.decision, c.state, c.reasons, c.created_at, m.subject,
                    c.fields, c.warnings, m.sender, c.updated_at
             FROM cases c JOIN messages m ON m.id = c.message
             WHERE ($1 IS NULL OR c.decision = $1) AND ($2 IS NULL OR c.kind = $2)
               AND ($4 IS NULL OR c.state = $4)
               AND ($5 IS NULL OR c.reasons LIKE '%\"code\":\"' || $5 || '\"%')
               AND ($6 IS NULL OR json_extract(c.fields, '$.vardenhet_namn') = $6)
             ORDER BY c.created_at DESC, c.id DESC LIMIT $3",
        )
        .bind(&filter.decision)
        .bind(&filter.kind)
        .bind(if filter.limit > 0 {
            filter.limit
        } else {
            i64::MAX
        })
        .bind(&filter.state)
        .bind(&filter.reason)
        .bind(&filter.unit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn case_detail(&self, id: &str) -> Result<Option<CaseDetail>, StoreError> {
        let case = sqlx::query_as::<_, CaseRow>(
            "SELECT c.id, c.kind, c.decision, c.state, c.fields, c.reasons, c.warnings, c.attachment, c.pages, c.created_at,
                    m.source_ref, m.message_id, m.sender, m.subject, m.headers,
                    c.manager_mail, c.holder_mail, c.card_number, c.updated_at, c.purged_at, m.email_date,
                    c.attachment_index, m.content_hash, m.purged_at AS message_purged_at
             FROM cases c JOIN messages m ON m.id = c.message WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(case) = case else { return Ok(None) };
        let replies = sqlx::query_as::<_, ReplyRow>(
            "SELECT id, recipient, subject, status, attempts, sent_at, last_error, raw FROM outbox WHERE case_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let audit = sqlx::query_as::<_, AuditRow>(
            "SELECT at, actor, action, before, after, comment FROM audit WHERE case_id = $1 ORDER BY at, rowid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let bounces = sqlx::query_as::<_, BounceRow>(
            "SELECT b.at, b.outbox_id, b.action, b.status, m.sender, m.subject
             FROM bounces b JOIN messages m ON m.id = b.message WHERE b.case_id = $1 ORDER BY b.at, b.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(CaseDetail {
            case,
            replies,
            audit,
            bounces,
        }))
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM messages) AS messages, (SELECT COUNT(*) FROM cases) AS cases,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS pending,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'sent') AS sent,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'failed') AS failed,
                    (SELECT COUNT(*) FROM outbox WHERE status = 'held') AS held,
                    (SELECT COUNT(*) FROM kiv_waiting) AS waiting",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            messages: row.try_get("messages")?,
            cases: row.try_get("cases")?,
            outbox_pending: row.try_get("pending")?,
            outbox_sent: row.try_get("sent")?,
            outbox_failed: row.try_get("failed")?,
            outbox_held: row.try_get("held")?,
            kiv_waiting: row.try_get("waiting")?,
        })
    }
}

async fn insert_case(
    tx: &mut sqlx::SqliteConnection,
    message_row: &str,
    position: usize,
    case: &CheckedCase,
    case_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let json =
        |v: Result<String, serde_json::Error>| v.map_err(|e| StoreError::Corrupt(e.to_string()));
    sqlx::query(
        "INSERT INTO cases (id, message, position, kind, decision, state, fields, reasons, warnings, attachment, pages, manager_mail, holder_mail, created_at, updated_at, attachment_index)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
    )
    .bind(case_id)
    .bind(message_row)
    .bind(position as i64)
    .bind(case.kind.as_str())
    .bind(case.decision.as_str())
    .bind(json(serde_json::to_string(&case.fields))?)
    .bind(json(serde_json::to_string(&case.reasons))?)
    .bind(json(serde_json::to_string(&case.warnings))?)
    .bind(&case.context.attachment)
    .bind(json(serde_json::to_string(&case.context.pages))?)
    .bind(&case.context.manager_mail)
    .bind(&case.context.holder_mail)
    .bind(now_ms)
    .bind(case.context.attachment_index.map(|i| i as i64))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_reply(
    tx: &mut sqlx::SqliteConnection,
    reply_id: &str,
    case_id: &str,
    reply: &crate::pipeline::reply::RenderedReply,
    now_ms: i64,
) -> Result<(), StoreError> {
    let raw = String::from_utf8(reply.raw.clone())
        .map_err(|_| StoreError::Corrupt("reply is not 7-bit text".into()))?;
    sqlx::query(
        "INSERT INTO outbox (id, case_id, message_id, sender, recipient, subject, raw, status, attempts, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
    )
    .bind(reply_id)
    .bind(case_id)
    .bind(&reply.message_id)
    .bind(&reply.sender)
    .bind(&reply.recipient)
    .bind(&reply.subject)
    .bind(raw)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a delivery report against the case it is about. A report naming a case we do not
/// have (forged, or from another installation) links nothing.
async fn link_bounce(
    tx: &mut sqlx::SqliteConnection,
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
    let what = format!(
        "delivery report{}{}{}",
        reply
            .as_deref()
            .map(|r| format!(" for reply {r}"))
            .unwrap_or_default(),
        link.action
            .as_deref()
            .map(|a| format!(", action {a}"))
            .unwrap_or_default(),
        link.status
            .as_deref()
            .map(|s| format!(", status {s}"))
            .unwrap_or_default(),
    );
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
    tx: &mut sqlx::SqliteConnection,
    case_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    before: Option<&str>,
    after: Option<&str>,
    comment: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (id, case_id, at, actor, action, before, after, comment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(new_id())
        .bind(case_id)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(before)
        .bind(after)
        .bind(comment)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
