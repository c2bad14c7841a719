//! The staff part of the store (see `staff.rs`), written once for both backends: the
//! statements are the same on SQLite and PostgreSQL but for how a text field of a case's
//! `fields` JSON is read, which each backend gives as a macro (`sqlite_staff.rs`,
//! `postgres_staff.rs`).

/// The columns of a [`CaseSummary`](super::CaseSummary), from `cases c JOIN messages m`.
macro_rules! case_summary_columns {
    () => {
        "SELECT c.id, c.kind, c.decision, c.state, c.reasons, c.created_at, m.subject,
                c.fields, c.warnings, m.sender, c.updated_at"
    };
}

/// The WHERE of a [`CaseFilter`](super::CaseFilter) over `cases c`, with only the conditions
/// the filter sets (so that each backend plans it against the lists' indexes, migration
/// `case_lists`, rather than one plan for every combination of `$n IS NULL OR …`), its
/// parameters numbered from `$first`. No JSON is read: the unit is the column `unit_hsaid`,
/// a reason code a row of `case_reasons`. The closed states are those of
/// `super::CLOSED_STATES`, written as the partial index `cases_closed_created` names them.
pub(super) fn case_filter_sql(f: &super::CaseFilter, first: usize) -> (String, Vec<String>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut args = Vec::new();
    let mut text = |condition: &str, value: String, conditions: &mut Vec<String>| {
        args.push(value);
        conditions.push(condition.replace("$?", &format!("${}", first + args.len() - 1)));
    };
    if let Some(v) = &f.decision {
        text("c.decision = $?", v.clone(), &mut conditions);
    }
    if let Some(v) = &f.kind {
        text("c.kind = $?", v.clone(), &mut conditions);
    }
    if let Some(v) = &f.state {
        text("c.state = $?", v.clone(), &mut conditions);
    }
    if let Some(v) = &f.reason {
        text(
            "EXISTS (SELECT 1 FROM case_reasons r WHERE r.case_id = c.id AND r.code = $?)",
            v.clone(),
            &mut conditions,
        );
    }
    if let Some(v) = &f.unit {
        text("c.unit_hsaid = $?", v.to_uppercase(), &mut conditions);
    }
    if f.closed {
        conditions
            .push("c.state IN ('handed_out', 'deregistered', 'rejection_confirmed')".to_string());
    }
    // Times are numbers: written into the SQL (no text from outside reaches it).
    if let Some(t) = f.changed_from {
        conditions.push(format!("c.updated_at >= {t}"));
    }
    if let Some(t) = f.changed_before {
        conditions.push(format!("c.updated_at < {t}"));
    }
    let sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (sql, args)
}

/// The order of a list: newest first, or oldest first (`oldest_first`), ties by case number.
fn case_order(f: &super::CaseFilter, alias: &str) -> String {
    let dir = if f.oldest_first { "ASC" } else { "DESC" };
    format!(" ORDER BY {alias}.created_at {dir}, {alias}.id {dir}")
}

/// One page of a list: the page's case numbers first, from the list's index alone (an
/// offset steps over index entries, not over rows joined to their email), then those cases
/// with their emails. Parameters: the filter's, then limit and offset.
pub(super) fn list_cases_sql(f: &super::CaseFilter) -> (String, Vec<String>) {
    let (filter, args) = case_filter_sql(f, 1);
    let n = args.len();
    let sql = format!(
        "{} FROM (SELECT c.id, c.created_at FROM cases c{filter}{} LIMIT ${} OFFSET ${}) p
         JOIN cases c ON c.id = p.id JOIN messages m ON m.id = c.message{}",
        case_summary_columns!(),
        case_order(f, "c"),
        n + 1,
        n + 2,
        case_order(f, "p"),
    );
    (sql, args)
}

/// A list's unit HSA-ids. A list of one state (Avvisade) is read as a loose index scan of
/// `cases_state_unit_created`: one index probe per unit (a few hundred), not one step per
/// case; any other filter reads its cases' units.
pub(super) fn case_units_sql(f: &super::CaseFilter) -> (String, Vec<String>) {
    let only_state = super::CaseFilter {
        state: f.state.clone(),
        limit: f.limit,
        offset: f.offset,
        oldest_first: f.oldest_first,
        ..super::CaseFilter::default()
    };
    match &f.state {
        Some(state) if *f == only_state => (
            "WITH RECURSIVE u(v) AS (
                 SELECT (SELECT c.unit_hsaid FROM cases c WHERE c.state = $1 AND c.unit_hsaid > ''
                         ORDER BY c.unit_hsaid LIMIT 1)
                 UNION ALL
                 SELECT (SELECT c.unit_hsaid FROM cases c WHERE c.state = $1 AND c.unit_hsaid > u.v
                         ORDER BY c.unit_hsaid LIMIT 1)
                 FROM u WHERE u.v IS NOT NULL)
             SELECT v FROM u WHERE v IS NOT NULL"
                .to_string(),
            vec![state.clone()],
        ),
        _ => {
            let (filter, args) = case_filter_sql(f, 1);
            let and = if filter.is_empty() { " WHERE" } else { " AND" };
            (
                format!("SELECT DISTINCT c.unit_hsaid FROM cases c{filter}{and} c.unit_hsaid IS NOT NULL"),
                args,
            )
        }
    }
}

/// Implements the staff queries on `$store`, whose database is `$db`. `$field!("col", "key")`
/// is the SQL reading the text `key` of the JSON column `col`; `$field!(sorted "col", "key")`
/// the same, to sort by. `$store::lock_purge` serialises retention runs where several
/// instances share the store.
macro_rules! staff_queries {
    ($store:ident, $db:ty, $field:ident) => {
        /// Binds the values of a case filter's SQL (`case_filter_sql`).
        fn bind_filter<'q, O>(
            mut q: sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments>,
            args: Vec<String>,
        ) -> sqlx::query::QueryAs<'q, $db, O, <$db as sqlx::Database>::Arguments> {
            for arg in args {
                q = q.bind(arg);
            }
            q
        }

        impl $store {
        pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>, StoreError> {
            let (sql, args) = super::staff_queries::list_cases_sql(filter);
            let q = sqlx::query_as::<_, CaseSummary>(sqlx::AssertSqlSafe(sql));
            Ok(bind_filter(q, args)
                .bind(if filter.limit > 0 { filter.limit } else { i64::MAX })
                .bind(filter.offset.max(0))
                .fetch_all(&self.read)
                .await?)
        }

        pub async fn count_cases(&self, filter: &CaseFilter) -> Result<i64, StoreError> {
            let (filter, args) = super::staff_queries::case_filter_sql(filter, 1);
            let q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM cases c{filter}"
            )));
            Ok(bind_filter(q, args).fetch_one(&self.read).await?.0)
        }

        pub async fn case_units(&self, filter: &CaseFilter) -> Result<Vec<String>, StoreError> {
            let all = CaseFilter {
                unit: None,
                ..filter.clone()
            };
            let (sql, args) = super::staff_queries::case_units_sql(&all);
            let q = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
            let mut units: Vec<String> = bind_filter(q, args)
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|(u,)| u)
                .filter(|u| !u.trim().is_empty())
                .collect();
            units.sort();
            Ok(units)
        }

        pub async fn add_user(
            &self,
            username: &str,
            display_name: &str,
            password_hash: &str,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "INSERT INTO users (username, display_name, password_hash, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (username) DO NOTHING",
            )
            .bind(username)
            .bind(display_name)
            .bind(password_hash)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub async fn set_user_disabled(
            &self,
            username: &str,
            disabled: bool,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await?;
            let done =
                sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE username = $1")
                    .bind(username)
                    .bind(disabled as i64)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        }

        pub async fn set_password(
            &self,
            username: &str,
            password_hash: &str,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await?;
            let done =
                sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE username = $1")
                    .bind(username)
                    .bind(password_hash)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            // A new password ends the sessions opened with the old one.
            sqlx::query("DELETE FROM sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        }

        pub async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
            Ok(sqlx::query_as::<_, UserRow>(
                "SELECT username, display_name, password_hash, disabled, created_at FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(&self.read)
            .await?)
        }

        pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
            Ok(sqlx::query_as::<_, UserRow>(
                "SELECT username, display_name, password_hash, disabled, created_at FROM users ORDER BY username",
            )
            .fetch_all(&self.read)
            .await?)
        }

        pub async fn create_session(
            &self,
            token_hash: &str,
            username: &str,
            csrf: &str,
            now_ms: i64,
            expires_ms: i64,
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await?;
            // Expired sessions are cleared on the way: no separate sweeper needed.
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(username)
            .bind(csrf)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        pub async fn session(
            &self,
            token_hash: &str,
            now_ms: i64,
        ) -> Result<Option<SessionRow>, StoreError> {
            Ok(sqlx::query_as::<_, SessionRow>(
                "SELECT s.username, u.display_name, s.csrf, s.expires_at FROM sessions s
                 JOIN users u ON u.username = s.username
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&self.read)
            .await?)
        }

        pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        pub async fn login_failures(
            &self,
            key: &str,
            since_ms: i64,
        ) -> Result<(i64, Option<i64>), StoreError> {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM login_attempts WHERE key = $1 AND at > $2",
            )
            .bind(key)
            .bind(since_ms)
            .fetch_one(&self.read)
            .await?;
            Ok((row.try_get("n")?, row.try_get("oldest")?))
        }

        pub async fn login_failed(
            &self,
            keys: &[String],
            at_ms: i64,
            forget_before_ms: i64,
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM login_attempts WHERE at <= $1")
                .bind(forget_before_ms)
                .execute(&mut *tx)
                .await?;
            for key in keys {
                sqlx::query("INSERT INTO login_attempts (key, at) VALUES ($1, $2)")
                    .bind(key)
                    .bind(at_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM login_attempts WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        pub async fn lifecycle_case(&self, id: &str) -> Result<Option<LifecycleCase>, StoreError> {
            Ok(sqlx::query_as::<_, LifecycleCase>(
                "SELECT c.id, c.kind, c.state, c.fields, c.manager_mail, c.holder_mail, c.card_number,
                        c.purged_at, m.message_id, m.subject, m.sender,
                        (SELECT o.recipient FROM outbox o WHERE o.case_id = c.id ORDER BY o.created_at, o.id LIMIT 1)
                            AS reply_recipient
                 FROM cases c JOIN messages m ON m.id = c.message WHERE c.id = $1",
            )
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
        }

        pub async fn apply_transition(&self, t: &Transition) -> Result<Vec<String>, StoreError> {
            let mut tx = self.pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE cases SET state = $3, updated_at = $4,
                        card_number = COALESCE($5, card_number)
                 WHERE id = $1 AND state = $2 AND purged_at IS NULL
                   AND ($6 IS NULL OR card_number = $6)",
            )
            .bind(&t.case_id)
            .bind(&t.from)
            .bind(&t.to)
            .bind(t.at)
            .bind(t.card.as_ref().map(|c| c.card_number.as_str()))
            .bind(&t.replaces_card)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "{} is no longer in state {}",
                    t.case_id, t.from
                )));
            }
            if let Some(card) = &t.card {
                let taken = sqlx::query("SELECT order_case FROM known_cards WHERE card_number = $1")
                    .bind(&card.card_number)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = taken {
                    let other: String = row.try_get("order_case")?;
                    return Err(StoreError::Conflict(format!(
                        "the card number is already recorded on {other}"
                    )));
                }
                if let Some(old) = &t.replaces_card {
                    // A correction: the known card keeps its history under the right number.
                    sqlx::query(
                        "UPDATE known_cards SET card_number = $1 WHERE card_number = $2 AND order_case = $3",
                    )
                    .bind(&card.card_number)
                    .bind(old)
                    .bind(&t.case_id)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO known_cards (card_number, order_case, personnummer, handed_out_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&card.card_number)
                    .bind(&t.case_id)
                    .bind(&card.personnummer)
                    .bind(t.at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some(card) = &t.deregistered_card {
                sqlx::query(
                    "UPDATE known_cards SET deregistered_case = $2, deregistered_at = $3
                     WHERE card_number = $1 AND deregistered_case IS NULL",
                )
                .bind(card)
                .bind(&t.case_id)
                .bind(t.at)
                .execute(&mut *tx)
                .await?;
            }
            audit(
                &mut tx,
                &t.case_id,
                t.at,
                &t.actor,
                &t.action,
                Some(&t.audit_before),
                Some(&t.audit_after),
                t.comment.as_deref(),
            )
            .await?;
            if t.withdraw_unsent {
                // A reply between its claim and the hand-over fence (`reply_handed_over`,
                // guarded by status 'pending') is stopped by the fence; one already handed
                // over ('sent') cannot be called back.
                let withdrawn: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, status FROM outbox
                     WHERE case_id = $1 AND status IN ('pending', 'held', 'failed') ORDER BY id",
                )
                .bind(&t.case_id)
                .fetch_all(&mut *tx)
                .await?;
                for (id, status) in &withdrawn {
                    sqlx::query(
                        "UPDATE outbox SET status = 'withdrawn', claimed_by = NULL, claimed_until = NULL,
                                sending_at = NULL
                         WHERE id = $1 AND status = $2",
                    )
                    .bind(id)
                    .bind(status)
                    .execute(&mut *tx)
                    .await?;
                }
                for (id, status) in &withdrawn {
                    audit(
                        &mut tx,
                        &t.case_id,
                        t.at,
                        "system",
                        "reply_withdrawn",
                        Some(status),
                        Some("withdrawn"),
                        Some(id),
                    )
                    .await?;
                }
            }
            let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1")
                .bind(&t.case_id)
                .fetch_one(&mut *tx)
                .await?;
            let mut n: i64 = row.try_get("n")?;
            let mut ids = Vec::new();
            for notice in &t.notices {
                n += 1;
                let id = format!("{}-{n}", t.case_id);
                insert_reply(&mut tx, &id, &t.case_id, notice, t.at).await?;
                ids.push(id);
            }
            for note in &t.notes {
                audit(
                    &mut tx,
                    &t.case_id,
                    t.at,
                    "system",
                    "no_notice",
                    None,
                    None,
                    Some(note),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(ids)
        }

        pub async fn known_card(&self, card_number: &str) -> Result<Option<KnownCard>, StoreError> {
            Ok(sqlx::query_as::<_, KnownCard>(
                "SELECT card_number, order_case, handed_out_at, deregistered_case, deregistered_at
                 FROM known_cards WHERE card_number = $1",
            )
            .bind(card_number)
            .fetch_optional(&self.read)
            .await?)
        }

        pub async fn deregistrations_of_card(
            &self,
            card_number: &str,
        ) -> Result<Vec<String>, StoreError> {
            let rows = sqlx::query(
                concat!(
                    "SELECT id FROM cases WHERE kind = 'deregistration' AND ",
                    $field!("fields", "kortnummer"),
                    " = $1 ORDER BY created_at, id"
                ),
            )
            .bind(card_number)
            .fetch_all(&self.read)
            .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
                .collect()
        }

        pub async fn search(
            &self,
            query: &str,
            limit: i64,
            offset: i64,
        ) -> Result<Vec<CaseSummary>, StoreError> {
            // Every word of the query is a range of the search index (`terms`): the cases
            // that have all of them, through one INTERSECT of primary-key range scans. A
            // handed-out card's number is its own indexed column.
            let ranges = super::terms::query_ranges(query, chrono::Utc::now().date_naive());
            if ranges.is_empty() {
                return Ok(Vec::new());
            }
            let card: String = query.chars().filter(|c| !c.is_whitespace()).collect();
            let mut sql = String::from(concat!(
                case_summary_columns!(),
                " FROM cases c JOIN messages m ON m.id = c.message WHERE c.id IN ("
            ));
            for i in 0..ranges.len() {
                if i > 0 {
                    sql.push_str(" INTERSECT ");
                }
                sql.push_str(&format!(
                    "SELECT case_id FROM case_terms WHERE term >= ${} AND term < ${}",
                    2 * i + 4,
                    2 * i + 5
                ));
            }
            sql.push_str(
                " UNION SELECT id FROM cases WHERE card_number = $1)
                 ORDER BY c.created_at DESC, c.id DESC LIMIT $2 OFFSET $3",
            );
            let mut q = sqlx::query_as::<_, CaseSummary>(sqlx::AssertSqlSafe(sql))
                .bind(card)
                .bind(limit)
                .bind(offset.max(0));
            for (from, to) in ranges {
                q = q.bind(from).bind(to);
            }
            Ok(q.fetch_all(&self.read).await?)
        }

        pub async fn message_cases(&self, message_row: &str) -> Result<Vec<MessageCase>, StoreError> {
            Ok(sqlx::query_as::<_, MessageCase>(
                "SELECT id, kind, reasons, attachment, attachment_index, pages FROM cases
                 WHERE message = $1 ORDER BY position, id",
            )
            .bind(message_row)
            .fetch_all(&self.read)
            .await?)
        }

        pub async fn received_since(&self, since_ms: i64) -> Result<Vec<KindDecisionCount>, StoreError> {
            Ok(sqlx::query_as::<_, KindDecisionCount>(
                "SELECT kind, decision, COUNT(*) AS n FROM cases WHERE created_at >= $1
                 GROUP BY kind, decision ORDER BY kind, decision",
            )
            .bind(since_ms)
            .fetch_all(&self.read)
            .await?)
        }

        pub async fn oldest_waiting(&self) -> Result<OldestWaiting, StoreError> {
            Ok(sqlx::query_as::<_, OldestWaiting>(
                "SELECT (SELECT MIN(created_at) FROM cases WHERE state = 'rejected') AS rejected,
                        (SELECT MIN(created_at) FROM cases WHERE state = 'held') AS held,
                        (SELECT MIN(created_at) FROM cases WHERE state = 'queued' AND kind = 'order') AS to_order,
                        (SELECT MIN(created_at) FROM cases WHERE state = 'queued' AND kind = 'deregistration') AS to_deregister,
                        (SELECT MIN(created_at) FROM outbox WHERE status = 'held') AS held_replies,
                        (SELECT MIN(received_at) FROM messages WHERE outcome = 'quarantined' AND reprocessed_at IS NULL) AS quarantined",
            )
            .fetch_one(&self.read)
            .await?)
        }

        pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
            Ok(sqlx::query_as::<_, QueueCounts>(
                "SELECT (SELECT COUNT(*) FROM cases WHERE state = 'rejected') AS rejected,
                        (SELECT COUNT(*) FROM cases WHERE state = 'held') AS held,
                        (SELECT COUNT(*) FROM cases WHERE state = 'queued' AND kind = 'order') AS to_order,
                        (SELECT COUNT(*) FROM cases WHERE state = 'queued' AND kind = 'deregistration') AS to_deregister,
                        (SELECT COUNT(*) FROM cases WHERE state IN ('ordered_at_telia', 'card_ready')) AS in_progress,
                        (SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined' AND reprocessed_at IS NULL) AS quarantined,
                        (SELECT COUNT(*) FROM outbox WHERE status = 'held') AS held_replies",
            )
            .fetch_one(&self.read)
            .await?)
        }

        pub async fn held_replies(
            &self,
            limit: i64,
            offset: i64,
        ) -> Result<Vec<HeldReply>, StoreError> {
            // The outbox keeps no time of holding: the case's latest `reply_held` audit row
            // gives it (the reply's creation when that row is missing).
            Ok(sqlx::query_as::<_, HeldReply>(
                "SELECT o.id, o.case_id, o.recipient, o.subject, o.last_error, o.created_at,
                        COALESCE((SELECT MAX(a.at) FROM audit a
                                  WHERE a.case_id = o.case_id AND a.action = 'reply_held'), o.created_at) AS held_at
                 FROM outbox o WHERE o.status = 'held'
                 ORDER BY held_at, o.id LIMIT $1 OFFSET $2",
            )
            .bind(limit)
            .bind(offset.max(0))
            .fetch_all(&self.read)
            .await?)
        }

        /// See `Store::held_by_limit_to`.
        pub async fn held_by_limit_to(&self, recipient: &str) -> Result<Vec<String>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT id FROM outbox
                 WHERE status = 'held' AND lower(recipient) = lower($1)
                   AND (last_error IS NULL OR last_error NOT LIKE $2)
                 ORDER BY created_at, id",
            )
            .bind(recipient)
            .bind(format!("{}%", super::IN_DOUBT))
            .fetch_all(&self.pool)
            .await?)
        }

        /// See `Store::settle_held`.
        pub async fn settle_held(
            &self,
            case_id: &str,
            reply: Option<&str>,
            actor: &str,
            now_ms: i64,
            settle: super::SettleHeld,
        ) -> Result<usize, StoreError> {
            let mut tx = self.pool.begin().await?;
            let mut released: Vec<String> = sqlx::query_scalar(settle.sql())
                .bind(case_id)
                .bind(actor)
                .bind(now_ms)
                .bind(reply)
                .fetch_all(&mut *tx)
                .await?;
            released.sort();
            for id in &released {
                audit(
                    &mut tx,
                    case_id,
                    now_ms,
                    actor,
                    settle.action(),
                    Some("held"),
                    Some(settle.status()),
                    Some(id),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(released.len())
        }

        /// Holds one reply for staff (see `Store::reply_held`, `Store::reply_in_doubt`): from
        /// `pending`, or from `sent` while its answer is not recorded (`sending_at` set).
        pub async fn hold_reply(
            &self,
            id: &str,
            now_ms: i64,
            why: &str,
            from: &str,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await?;
            let case_id: Option<String> = sqlx::query_scalar(
                "UPDATE outbox SET status = 'held', last_error = $2, sent_at = NULL, claimed_by = NULL, claimed_until = NULL, sending_at = NULL
                 WHERE id = $1 AND status = $3 AND ($3 = 'pending' OR sending_at IS NOT NULL) RETURNING case_id",
            )
            .bind(id)
            .bind(why)
            .bind(from)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(case_id) = &case_id {
                audit(
                    &mut tx,
                    case_id,
                    now_ms,
                    "system",
                    "reply_held",
                    Some(from),
                    Some("held"),
                    Some(why),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(case_id.is_some())
        }

        pub async fn unprocessed_mail(
            &self,
            limit: i64,
            offset: i64,
        ) -> Result<Vec<MailRow>, StoreError> {
            Ok(sqlx::query_as::<_, MailRow>(
                "SELECT id, source_ref, message_id, received_at, sender, subject, outcome, ignored_reason,
                        error, reprocessed_at, purged_at, content_hash
                 FROM messages WHERE outcome IN ('ignored', 'quarantined')
                 ORDER BY received_at DESC, id DESC LIMIT $1 OFFSET $2",
            )
            .bind(limit)
            .bind(offset.max(0))
            .fetch_all(&self.read)
            .await?)
        }

        pub async fn mail(&self, id: &str) -> Result<Option<MailRow>, StoreError> {
            Ok(sqlx::query_as::<_, MailRow>(
                "SELECT id, source_ref, message_id, received_at, sender, subject, outcome, ignored_reason,
                        error, reprocessed_at, purged_at, content_hash
                 FROM messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
        }

        pub async fn mark_reprocessed(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
            sqlx::query("UPDATE messages SET reprocessed_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        /// Retention, in transactions of at most `PURGE_BATCH` emails and cases each, with a
        /// pause between them: the writer is free between batches (the intake records, staff
        /// act), and nothing reads through it (the pages read on their own connections), so a
        /// first purge of years of cases blocks no page and no `/readyz`.
        pub async fn purge(
            &self,
            policy: &RetentionPolicy,
            now_ms: i64,
        ) -> Result<PurgeReport, StoreError> {
            let mut report = PurgeReport::default();
            loop {
                let (batch, more) = self.purge_batch(policy, now_ms, super::PURGE_BATCH).await?;
                report.messages += batch.messages;
                report.rejected_cases += batch.rejected_cases;
                report.completed_cases += batch.completed_cases;
                report.source_refs.extend(batch.source_refs);
                if !more {
                    return Ok(report);
                }
                tokio::time::sleep(std::time::Duration::from_millis(super::PURGE_PAUSE_MS)).await;
            }
        }

        /// One batch of retention: at most `limit` emails and cases. True when more may be due.
        async fn purge_batch(
            &self,
            policy: &RetentionPolicy,
            now_ms: i64,
            limit: i64,
        ) -> Result<(PurgeReport, bool), StoreError> {
            let mut report = PurgeReport::default();
            let mut budget = limit;
            let mut tx = self.pool.begin().await?;
            Self::lock_purge(&mut tx).await?;

            // Emails that made no case: only the message row holds personal data.
            for (outcome, keep_ms) in [
                ("ignored", policy.ignored_ms),
                ("quarantined", policy.quarantined_ms),
            ] {
                if budget == 0 {
                    break;
                }
                let rows = sqlx::query(
                    "UPDATE messages SET sender = NULL, subject = '', headers = '', purged_at = $3
                     WHERE id IN (SELECT id FROM messages
                                  WHERE outcome = $1 AND received_at < $2 AND purged_at IS NULL
                                  ORDER BY received_at LIMIT $4)
                     RETURNING source_ref",
                )
                .bind(outcome)
                .bind(now_ms.saturating_sub(keep_ms))
                .bind(now_ms)
                .bind(budget)
                .fetch_all(&mut *tx)
                .await?;
                budget -= rows.len() as i64;
                report.messages += rows.len() as u64;
                for r in rows {
                    report.source_refs.push(r.try_get("source_ref")?);
                }
            }

            // Cases, by how they ended, counted from their last event.
            let mut due: Vec<(String, String, bool)> = Vec::new();
            for (states, keep_ms, rejected) in [
                (REJECTED_STATES, policy.rejected_ms, true),
                (COMPLETED_STATES, policy.completed_ms, false),
            ] {
                for state in states {
                    if budget == 0 {
                        break;
                    }
                    let rows = sqlx::query(
                        "SELECT id, message FROM cases WHERE state = $1 AND updated_at < $2 AND purged_at IS NULL
                         ORDER BY updated_at, id LIMIT $3",
                    )
                    .bind(*state)
                    .bind(now_ms.saturating_sub(keep_ms))
                    .bind(budget)
                    .fetch_all(&mut *tx)
                    .await?;
                    budget -= rows.len() as i64;
                    for r in rows {
                        due.push((r.try_get("id")?, r.try_get("message")?, rejected));
                    }
                }
            }
            for (case_id, _, rejected) in &due {
                // The shell keeps number, kind, decision, state, reason codes and dates.
                sqlx::query(
                    "UPDATE cases SET fields = '{}', attachment = NULL, attachment_index = NULL, manager_mail = NULL, holder_mail = NULL, field_boxes = '[]',
                            card_number = NULL, purged_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE outbox SET recipient = '', subject = '', raw = '', last_error = NULL WHERE case_id = $1",
                )
                .bind(case_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE delivery_attempts SET detail = NULL WHERE outbox_id IN (SELECT id FROM outbox WHERE case_id = $1)",
                )
                .bind(case_id)
                .execute(&mut *tx)
                .await?;
                // The search terms are the person's names and numbers; the shell is still
                // found by its case number.
                sqlx::query("DELETE FROM case_terms WHERE case_id = $1")
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                let shell = super::terms::CaseText {
                    case_id,
                    fields: &serde_json::Value::Null,
                    subject: "",
                    sender: None,
                    kiv_name: None,
                };
                let today = chrono::Utc::now().date_naive();
                for term in super::terms::case_terms(&shell, today) {
                    sqlx::query("INSERT INTO case_terms (term, case_id) VALUES ($1, $2)")
                        .bind(term)
                        .bind(case_id)
                        .execute(&mut *tx)
                        .await?;
                }
                // Staff comments may describe the person.
                sqlx::query("UPDATE audit SET comment = NULL WHERE case_id = $1")
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                // A known card keeps its number and order case (a later deregistration still links
                // to the shell); the personnummer goes.
                sqlx::query("UPDATE known_cards SET personnummer = NULL WHERE order_case = $1")
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                // A rejection nobody confirmed is closed by its retention: it leaves Avvisade
                // for Avslutade, and the audit row says so.
                let closed = sqlx::query(
                    "UPDATE cases SET state = 'rejection_confirmed' WHERE id = $1 AND state = 'rejected'",
                )
                .bind(case_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let (before, after) = if closed {
                    (Some("rejected"), Some("rejection_confirmed"))
                } else {
                    (None, None)
                };
                audit(
                    &mut tx, case_id, now_ms, "system", "purged", before, after, None,
                )
                .await?;
                if *rejected {
                    report.rejected_cases += 1;
                } else {
                    report.completed_cases += 1;
                }
            }
            // An email goes when every case it made is a shell.
            let mut messages: Vec<&String> = due.iter().map(|(_, m, _)| m).collect();
            messages.sort();
            messages.dedup();
            for message in messages {
                let row = sqlx::query(
                    "UPDATE messages SET sender = NULL, subject = '', headers = '', purged_at = $2
                     WHERE id = $1 AND purged_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM cases WHERE message = $1 AND purged_at IS NULL)
                     RETURNING source_ref",
                )
                .bind(message)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = row {
                    report.messages += 1;
                    report.source_refs.push(r.try_get("source_ref")?);
                }
            }
            tx.commit().await?;
            Ok((report, budget == 0))
        }
        }
    };
}

pub(super) use {case_summary_columns, staff_queries};
