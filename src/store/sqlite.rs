//! SQLite backend (the embedded default). WAL journal with `synchronous = NORMAL`: a commit
//! survives a crash of the process (the promise the source acknowledgement relies on); only a
//! power loss may take the last commits, and then the unacknowledged mail is read again.

use std::path::Path;
use std::str::FromStr;

use chrono::Datelike;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{new_id, MailRecord, OutboxRow, Recorded, RenderReply, StoreError, WaitingMail};
use crate::case::{CheckedCase, IgnoreReason};

/// Read connections of a SQLite store: four staff at once each get their own.
const READ_CONNECTIONS: u32 = 4;

#[derive(Clone)]
pub struct SqliteStore {
    /// The one writer: every write, in order (SQLite has one writer anyway).
    pub(super) pool: SqlitePool,
    /// A few read connections beside it (WAL lets readers run while the writer writes): the
    /// staff pages, the search and `/readyz` read here, so that neither a page nor a purge
    /// batch makes another person's page wait. Read-only (`query_only`).
    pub(super) read: SqlitePool,
    /// Names this store instance in the outbox claims (`claimed_by`).
    pub(super) holder: String,
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
        let open_error = |e| StoreError::Open {
            path: path.display().to_string(),
            source: e,
        };
        // One writer connection: SQLite has one writer anyway, and this keeps every write in
        // order.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // Opened once the schema is there (a reader never migrates).
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .min_connections(1)
            .connect_with(options.pragma("query_only", "true"))
            .await
            .map_err(open_error)?;
        Ok(SqliteStore {
            pool,
            read,
            holder: super::new_holder(),
        })
    }

    /// Records one email in one transaction, in four round trips to SQLite's worker thread
    /// (every round trip is a hand-over between threads, which cost more than the SQL):
    /// `BEGIN IMMEDIATE`, one look-up (replay, duplicate, the year's case counter), every
    /// write as one script, `COMMIT`; and one look-up per person and unit of an order, for an
    /// open order (SPEC §4.3 `open_order_exists`). `IMMEDIATE` takes the write lock at once,
    /// so neither the counter nor the open orders read can change (another process, another
    /// recording) before the script writes.
    pub async fn record(
        &self,
        mail: &MailRecord,
        cases: &[CheckedCase],
        render: &RenderReply<'_>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let year = year_of(now_ms);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE source_ref = $1) AS replay,
                    ($2 IS NOT NULL AND EXISTS (SELECT 1 FROM messages
                        WHERE message_id = $2 AND outcome <> 'quarantined')) AS duplicate,
                    COALESCE((SELECT last FROM case_numbers WHERE year = $3), 0) AS last",
        )
        .bind(&mail.source_ref)
        .bind(&mail.message_id)
        .bind(year)
        .fetch_one(&mut *tx)
        .await?;
        if row.try_get::<i64, _>("replay")? != 0 {
            return Ok(Recorded::AlreadyRecorded);
        }
        let ignored = if row.try_get::<i64, _>("duplicate")? != 0 {
            Some(IgnoreReason::Duplicate)
        } else {
            mail.ignored
        };
        let mut last: i64 = row.try_get("last")?;
        // SPEC §4.3: a second open order for one person at one unit is flagged, read under
        // the write lock so that no other recording comes between the read and the write.
        let today = super::open_orders::today(now_ms);
        let (cases, open_order_exists) = if ignored.is_none() && mail.error.is_none() {
            let keys = super::open_orders::keys(cases, today);
            let open = super::open_orders::open_in_sqlite(&mut tx, keys).await?;
            super::open_orders::flag(cases, &open, today)
        } else {
            (std::borrow::Cow::Borrowed(cases), Vec::new())
        };
        let cases = cases.as_ref();
        let outcome = match (ignored, &mail.error) {
            (Some(_), _) => "ignored",
            (None, Some(_)) => "quarantined",
            (None, None) => "processed",
        };
        let message_row = new_id();
        let mut script = Script::default();
        script.push(
            "INSERT INTO messages (id, source_ref, message_id, content_hash, received_at, email_date, sender, subject, headers, outcome, ignored_reason, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [
                Arg::text(&message_row),
                Arg::text(&mail.source_ref),
                Arg::opt(&mail.message_id),
                Arg::text(&mail.content_hash),
                Arg::Int(mail.received_at),
                Arg::opt(&mail.email_date),
                Arg::opt(&mail.sender),
                Arg::text(&mail.subject),
                Arg::text(&mail.headers),
                Arg::text(outcome),
                Arg::Text(ignored.map(|r| r.as_str().to_string())),
                Arg::opt(&mail.error),
            ],
        );
        let result = match (ignored, &mail.error) {
            (Some(reason), _) => Recorded::Ignored(reason),
            (None, Some(_)) => Recorded::Quarantined,
            (None, None) => {
                let case_ids = push_cases(
                    &mut script,
                    (&message_row, mail),
                    cases,
                    year,
                    last,
                    render,
                    now_ms,
                )?;
                last += cases.len() as i64;
                if !cases.is_empty() {
                    script.push(
                        "INSERT INTO case_numbers (year, last) VALUES ($1, $2)
                         ON CONFLICT (year) DO UPDATE SET last = $2",
                        [Arg::Int(year), Arg::Int(last)],
                    );
                }
                Recorded::Processed {
                    case_ids,
                    open_order_exists,
                }
            }
        };
        // Whatever waited for KIV is now decided (or ignored, or quarantined): it waits no more.
        script.push(
            "DELETE FROM kiv_waiting WHERE source_ref = $1",
            [Arg::text(&mail.source_ref)],
        );
        script.execute(&mut tx).await?;
        // A delivery report links to its case after the email's own row exists; it reads
        // before it writes, so it keeps its own statements (bounces are rare).
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
        let before: i64 = sqlx::query("SELECT attempts FROM kiv_waiting WHERE source_ref = $1")
            .bind(&mail.source_ref)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("attempts"))
            .transpose()?
            .unwrap_or(0);
        let delay = crate::clock::backoff_ms(initial_ms, max_ms, before) as i64;
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

    /// The unary `+` keeps SQLite from choosing `outbox_due` for the time range and then
    /// sorting the whole backlog: `outbox_pending` gives the rows already in order.
    pub async fn due_replies(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(
            "SELECT id, case_id, sender, recipient, raw, attempts, created_at, released_by, automatic FROM outbox
             WHERE status = 'pending' AND +next_attempt_at <= $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes up to `limit` due replies for this instance to send: each is claimed until
    /// `now_ms + claim_ms`, and no other instance (or call) takes it before that, unless it is
    /// settled (sent, retried, failed, held) first. SQLite has a single writer, so one
    /// `UPDATE … RETURNING` is atomic; the order is the same as `due_replies`.
    /// See `Store::backup_to`.
    pub async fn backup_to(&self, file: &std::path::Path) -> Result<(), StoreError> {
        let path = file
            .to_str()
            .ok_or_else(|| StoreError::Corrupt("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops every claim on pending replies (see `Store::drop_own_stale_claims`).
    pub async fn drop_claims(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE status = 'pending' AND claimed_by IS NOT NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn take_due_replies(
        &self,
        now_ms: i64,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows = sqlx::query_as::<_, OutboxRow>(
            "UPDATE outbox SET claimed_by = $3, claimed_until = $4
             WHERE id IN (SELECT id FROM outbox
                 WHERE status = 'pending' AND +next_attempt_at <= $1
                   AND (claimed_until IS NULL OR claimed_until <= $1)
                 ORDER BY created_at, id LIMIT $2)
             RETURNING id, case_id, sender, recipient, raw, attempts, created_at, released_by, automatic",
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

    /// Marks delivered replies as sent, all in one transaction: one attempt row each and the
    /// status. The replies travel as one JSON array, so the statements are the same for any
    /// number of them (and stay in the statement cache).
    pub async fn replies_sent(
        &self,
        sent: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = sent
            .iter()
            .map(
                |(id, detail)| serde_json::json!({"attempt": new_id(), "id": id, "detail": detail}),
            )
            .collect();
        let rows = serde_json::Value::Array(rows).to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO delivery_attempts (id, outbox_id, at, ok, detail)
                 SELECT value ->> 'attempt', value ->> 'id', $2, 1, value ->> 'detail' FROM json_each($1);
             UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL,
                     claimed_by = NULL, claimed_until = NULL, sending_at = NULL
                 WHERE id IN (SELECT value ->> 'id' FROM json_each($1)) AND {};",
            super::AWAITING_ANSWER
        )))
        .bind(rows)
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
               AND source_ref LIKE 'imap:%' AND message_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn erased_on_server(
        &self,
        message_ids: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ids =
            serde_json::to_string(message_ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE messages SET server_erased_at = $2
             WHERE purged_at IS NOT NULL AND server_erased_at IS NULL
               AND message_id IN (SELECT value FROM json_each($1))",
        )
        .bind(ids)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn apply_verification(
        &self,
        v: &super::Verification,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        let script = verification_script(v)?;
        let reply_id = v.reply.as_ref().map(|(id, _)| id.clone());
        script.execute(&mut tx).await?;
        tx.commit().await?;
        Ok(reply_id)
    }
}

/// The writes of a verification after its conditional update of the case: audit rows for the
/// corrections and the confirmation, and the reply. Shared by both backends.
pub(super) fn verification_script(v: &super::Verification) -> Result<Script, StoreError> {
    let mut script = Script::default();
    // The corrected values are searched too (the words read before stay: staff may search
    // for what the form said).
    let fields: serde_json::Value =
        serde_json::from_str(&v.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let text = super::terms::CaseText {
        case_id: &v.case_id,
        fields: &fields,
        subject: "",
        sender: None,
        kiv_name: None,
    };
    push_terms(&mut script, &text, v.at);
    push_replaced_reasons(&mut script, &v.case_id, &v.reasons)?;
    for (field, before, after) in &v.corrections {
        let line = (
            v.case_id.as_str(),
            v.at,
            v.actor.as_str(),
            "field_corrected",
            before.as_deref(),
            after.as_deref(),
            Some(field.as_str()),
        );
        push_audit(&mut script, line);
    }
    if let Some(comment) = &v.confirmed {
        let line = (
            v.case_id.as_str(),
            v.at,
            v.actor.as_str(),
            "verified",
            Some(v.from.as_str()),
            Some(v.to.as_str()),
            Some(comment.as_str()),
        );
        push_audit(&mut script, line);
    }
    if let Some((id, reply)) = &v.reply {
        push_reply(
            &mut script,
            id,
            &v.case_id,
            reply,
            v.at,
            super::ReplyTrigger::Staff,
        )?;
    }
    if let Some(why) = &v.no_reply {
        let line = (
            v.case_id.as_str(),
            v.at,
            "system",
            "no_reply",
            None,
            None,
            Some(why.as_str()),
        );
        push_audit(&mut script, line);
    }
    Ok(script)
}

/// Several statements sent to SQLite's worker thread as one command: one round trip instead
/// of one a statement. Each statement numbers its parameters from `$1`; `execute` renumbers
/// them after those of the statements before (sqlx binds `$N` of every statement to argument
/// N). PostgreSQL prepares one statement at a time, so it runs them one by one
/// (`postgres::execute_script`).
#[derive(Default)]
pub(super) struct Script {
    pub(super) statements: Vec<(String, Vec<Arg>)>,
}

pub(super) enum Arg {
    Text(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

impl Arg {
    fn text(v: &str) -> Arg {
        Arg::Text(Some(v.to_string()))
    }
    fn opt(v: &Option<String>) -> Arg {
        Arg::Text(v.clone())
    }
}

impl Script {
    pub(super) fn push<const N: usize>(&mut self, statement: &str, args: [Arg; N]) {
        self.statements
            .push((statement.to_string(), args.into_iter().collect()));
    }

    pub(super) async fn execute(self, tx: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
        let mut sql = String::new();
        let mut all_args = Vec::new();
        for (statement, args) in self.statements {
            let offset = all_args.len();
            let mut rest = statement.as_str();
            while let Some(at) = rest.find('$') {
                sql.push_str(&rest[..=at]);
                rest = &rest[at + 1..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let n: usize = rest[..digits].parse().unwrap_or(0);
                sql.push_str(&(n + offset).to_string());
                rest = &rest[digits..];
            }
            sql.push_str(rest);
            sql.push_str(";\n");
            all_args.extend(args);
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in all_args {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::OptInt(v) => query.bind(v),
            };
        }
        query.execute(tx).await?;
        Ok(())
    }
}

pub(super) fn year_of(now_ms: i64) -> i64 {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|d| i64::from(d.year()))
        .unwrap_or(1970)
}

/// The statements that record the cases of one email (numbered after `last`), their audit rows
/// and their replies. Shared by both backends: the case ids and everything written for them
/// are the same on SQLite and PostgreSQL.
pub(super) fn push_cases(
    script: &mut Script,
    (message_row, mail): (&str, &MailRecord),
    cases: &[CheckedCase],
    year: i64,
    mut last: i64,
    render: &RenderReply<'_>,
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let mut case_ids = Vec::with_capacity(cases.len());
    for (position, case) in cases.iter().enumerate() {
        last += 1;
        let case_id = crate::case_id(year, last);
        push_case(script, message_row, position, case, &case_id, now_ms)?;
        let fields =
            serde_json::to_value(&case.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let text = super::terms::CaseText {
            case_id: &case_id,
            fields: &fields,
            subject: &mail.subject,
            sender: mail.sender.as_deref(),
            kiv_name: case.context.kiv_name.as_deref(),
        };
        push_terms(script, &text, now_ms);
        let created = Some(case.decision.as_str());
        let line = (
            case_id.as_str(),
            now_ms,
            "system",
            "created",
            None,
            created,
            None,
        );
        push_audit(script, line);
        if case.held() {
            // SPEC §4.4: no reply until staff confirm or correct the reading.
            let fields = verify_list(&case.verify);
            let line = (
                case_id.as_str(),
                now_ms,
                "system",
                "held",
                None,
                Some(HELD),
                Some(fields.as_str()),
            );
            push_audit(script, line);
            case_ids.push(case_id);
            continue;
        }
        let reply_id = format!("{case_id}-1");
        let message_id = super::reply_message_id(&reply_id, message_row);
        match render(case, &case_id, &message_id) {
            Some(reply) => push_reply(
                script,
                &reply_id,
                &case_id,
                &reply,
                now_ms,
                super::ReplyTrigger::Automatic,
            )?,
            None => {
                let why = Some("no address to reply to");
                let line = (
                    case_id.as_str(),
                    now_ms,
                    "system",
                    "no_reply",
                    None,
                    None,
                    why,
                );
                push_audit(script, line)
            }
        }
        case_ids.push(case_id);
    }
    Ok(case_ids)
}

fn push_case(
    script: &mut Script,
    message_row: &str,
    position: usize,
    case: &CheckedCase,
    case_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let json = |v: Result<String, serde_json::Error>| {
        v.map(|s| Arg::Text(Some(s)))
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    script.push(
        "INSERT INTO cases (id, message, position, kind, decision, state, fields, reasons, warnings, attachment, pages, manager_mail, holder_mail, created_at, updated_at, attachment_index, verify, field_boxes, kiv_name, terms_indexed)
         VALUES ($1, $2, $3, $4, $5, $15, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $16, $17, $18, 1)",
        [
            Arg::text(case_id),
            Arg::text(message_row),
            Arg::Int(position as i64),
            Arg::text(case.kind.as_str()),
            Arg::text(case.decision.as_str()),
            json(serde_json::to_string(&case.fields))?,
            json(serde_json::to_string(&case.reasons))?,
            json(serde_json::to_string(&case.warnings))?,
            Arg::opt(&case.context.attachment),
            json(serde_json::to_string(&case.context.pages))?,
            Arg::opt(&case.context.manager_mail),
            Arg::opt(&case.context.holder_mail),
            Arg::Int(now_ms),
            Arg::OptInt(case.context.attachment_index.map(|i| i as i64)),
            // SPEC §4.4: a held case keeps its decision but waits for staff, unanswered.
            Arg::text(if case.held() {
                HELD
            } else {
                case.decision.as_str()
            }),
            json(serde_json::to_string(&case.verify))?,
            json(serde_json::to_string(&case.context.field_boxes))?,
            Arg::opt(&case.context.kiv_name),
        ],
    );
    let codes: Vec<&str> = case.reasons.iter().map(|f| f.code.as_str()).collect();
    push_reason_codes(script, case_id, &codes);
    Ok(())
}

/// Adds a case's reason codes to `case_reasons` (what the lists' reason filter reads).
fn push_reason_codes(script: &mut Script, case_id: &str, codes: &[&str]) {
    let mut codes = codes.to_vec();
    codes.sort_unstable();
    codes.dedup();
    if codes.is_empty() {
        return;
    }
    let mut sql = String::from("INSERT INTO case_reasons (case_id, code) VALUES ");
    let mut args = vec![Arg::text(case_id)];
    for (i, code) in codes.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("($1, ${})", i + 2));
        args.push(Arg::text(code));
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    script.statements.push((sql, args));
}

/// Replaces a case's reason codes with those of its `reasons` JSON (a verification).
fn push_replaced_reasons(
    script: &mut Script,
    case_id: &str,
    reasons: &str,
) -> Result<(), StoreError> {
    let reasons: Vec<serde_json::Value> =
        serde_json::from_str(reasons).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    script.push(
        "DELETE FROM case_reasons WHERE case_id = $1",
        [Arg::text(case_id)],
    );
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.get("code").and_then(|c| c.as_str()))
        .collect();
    push_reason_codes(script, case_id, &codes);
    Ok(())
}

/// Adds a case's search terms (`terms::case_terms`) in one statement; those it has are kept.
pub(super) fn push_terms(script: &mut Script, text: &super::terms::CaseText<'_>, now_ms: i64) {
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive();
    let terms = super::terms::case_terms(text, today);
    if terms.is_empty() {
        return;
    }
    let mut sql = String::from("INSERT INTO case_terms (term, case_id) VALUES ");
    let mut args = vec![Arg::text(text.case_id)];
    for (i, term) in terms.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, $1)", i + 2));
        args.push(Arg::Text(Some(term)));
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    script.statements.push((sql, args));
}

/// Records that a case recorded before the search index existed is now in it.
pub(super) fn push_indexed(script: &mut Script, case_id: &str) {
    script.push(
        "UPDATE cases SET terms_indexed = 1 WHERE id = $1",
        [Arg::text(case_id)],
    );
}

/// `epost, (utan fält)`: the fields a held case waits on, for its audit row.
pub fn verify_list(verify: &[Option<&str>]) -> String {
    verify
        .iter()
        .map(|f| f.unwrap_or("(utan fält)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lifecycle state of a case held for verification (SPEC §4.4).
pub const HELD: &str = "held";

pub(super) fn push_reply(
    script: &mut Script,
    reply_id: &str,
    case_id: &str,
    reply: &crate::case::RenderedReply,
    now_ms: i64,
    trigger: super::ReplyTrigger,
) -> Result<(), StoreError> {
    let raw = String::from_utf8(reply.raw.clone())
        .map_err(|_| StoreError::Corrupt("reply is not 7-bit text".into()))?;
    script.push(
        "INSERT INTO outbox (id, case_id, message_id, sender, recipient, subject, raw, status, attempts, created_at, next_attempt_at, automatic)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $9)",
        [
            Arg::text(reply_id),
            Arg::text(case_id),
            Arg::text(&reply.message_id),
            Arg::text(&reply.sender),
            Arg::text(&reply.recipient),
            Arg::text(&reply.subject),
            Arg::Text(Some(raw)),
            Arg::Int(now_ms),
            Arg::Int(i64::from(trigger == super::ReplyTrigger::Automatic)),
        ],
    );
    Ok(())
}

pub(super) async fn insert_reply(
    tx: &mut sqlx::SqliteConnection,
    reply_id: &str,
    case_id: &str,
    reply: &crate::case::RenderedReply,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut script = Script::default();
    push_reply(
        &mut script,
        reply_id,
        case_id,
        reply,
        now_ms,
        super::ReplyTrigger::Staff,
    )?;
    script.execute(tx).await
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
    let what = bounce_audit_text(reply.as_deref(), link);
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

/// The audit comment of a delivery report.
pub(super) fn bounce_audit_text(reply: Option<&str>, link: &crate::bounce::BounceLink) -> String {
    format!(
        "delivery report{}{}{}",
        reply.map(|r| format!(" for reply {r}")).unwrap_or_default(),
        link.action
            .as_deref()
            .map(|a| format!(", action {a}"))
            .unwrap_or_default(),
        link.status
            .as_deref()
            .map(|s| format!(", status {s}"))
            .unwrap_or_default(),
    )
}

/// One line of the audit trail: (case, at, actor, action, before, after, comment).
pub(super) type AuditLine<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

pub(super) fn push_audit(script: &mut Script, line: AuditLine<'_>) {
    let (case_id, at, actor, action, before, after, comment) = line;
    let opt = |v: Option<&str>| Arg::Text(v.map(str::to_string));
    script.push(
        "INSERT INTO audit (id, case_id, at, actor, action, before, after, comment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            Arg::text(&new_id()),
            Arg::text(case_id),
            Arg::Int(at),
            Arg::text(actor),
            Arg::text(action),
            opt(before),
            opt(after),
            opt(comment),
        ],
    );
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
    let mut script = Script::default();
    push_audit(
        &mut script,
        (case_id, at, actor, action, before, after, comment),
    );
    script.execute(tx).await
}
