//! SPEC §4.3 `open_order_exists`, decided inside the transaction that records an email's
//! cases: an order for a person who already has an open order (queued, ordered at Telia, card
//! ready) at the same unit would order a second card. Both backends read the open orders with
//! `SQL` in their recording transaction, after whatever serialises two recordings of the same
//! person and unit (SQLite: the one writer, `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock
//! per person and unit, `LOCK_KEY`), so the second of two orders recorded at once always sees
//! the first.

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::case::{CaseKind, CheckedCase, Decision, Finding, WarningCode};

/// The open orders of a person (`$1`, the personnummer's 12 digits, a search term of every
/// case) with their fields, oldest first; `at_unit` keeps those of one unit.
pub(super) const SQL: &str =
    "SELECT c.id, c.fields FROM case_terms t JOIN cases c ON c.id = t.case_id
     WHERE t.term = $1 AND c.kind = 'order' AND c.purged_at IS NULL
       AND c.state IN ('queued', 'ordered_at_telia', 'card_ready')
     ORDER BY c.created_at, c.id";

/// A person and a unit: the personnummer's 12 digits and the unit's HSA-id in upper case.
pub(super) type Key = (String, String);

/// The ids of `rows` (from `SQL`) whose unit is `unit` (HSA-ids compare without case).
pub(super) fn at_unit(rows: Vec<(String, String)>, unit: &str) -> Vec<String> {
    rows.into_iter()
        .filter(|(_, fields)| {
            serde_json::from_str::<serde_json::Value>(fields)
                .ok()
                .and_then(|f| f.get("vardenhet_hsaid")?.as_str().map(str::to_string))
                .is_some_and(|u| u.eq_ignore_ascii_case(unit))
        })
        .map(|(id, _)| id)
        .collect()
}

/// The person and unit of an order (`None` for a deregistration, or an order without a valid
/// personnummer or a unit).
pub(super) fn key_of(case: &CheckedCase, today: chrono::NaiveDate) -> Option<Key> {
    if case.kind != CaseKind::Order {
        return None;
    }
    let pnr = crate::domain::Personnummer::parse(case.fields.get("personnummer")?, today).ok()?;
    let unit = case.fields.get("vardenhet_hsaid")?.trim();
    (!unit.is_empty()).then(|| (pnr.digits12(), unit.to_ascii_uppercase()))
}

/// The distinct persons and units of an email's orders, in order (the order PostgreSQL takes
/// their locks in, so that two recordings never wait for each other crosswise).
pub(super) fn keys(cases: &[CheckedCase], today: chrono::NaiveDate) -> BTreeSet<Key> {
    cases.iter().filter_map(|c| key_of(c, today)).collect()
}

/// The PostgreSQL advisory lock key of a person and unit (hashed by the server, `hashtext`).
pub(super) fn lock_key((pnr12, unit): &Key) -> String {
    format!("{pnr12}/{unit}")
}

/// `cases` with `open_order_exists` on every order whose person and unit are in `open` (an
/// open order in the store) or have a queued order earlier in the same email; cloned only when
/// one is flagged. Also the positions flagged.
pub(super) fn flag<'a>(
    cases: &'a [CheckedCase],
    open: &BTreeSet<Key>,
    today: chrono::NaiveDate,
) -> (Cow<'a, [CheckedCase]>, Vec<usize>) {
    let mut out = Cow::Borrowed(cases);
    let mut flagged = Vec::new();
    let mut opened_here = BTreeSet::new();
    for (i, case) in cases.iter().enumerate() {
        let Some(key) = key_of(case, today) else {
            continue;
        };
        let already = case
            .warnings
            .iter()
            .any(|w| w.code == WarningCode::OpenOrderExists);
        if !already && (open.contains(&key) || opened_here.contains(&key)) {
            out.to_mut()[i].warnings.push(Finding::new(
                WarningCode::OpenOrderExists,
                Some("personnummer"),
            ));
            flagged.push(i);
        }
        // A queued order (not held for staff) is open from this email on.
        if case.decision == Decision::Queued && !case.held() {
            opened_here.insert(key);
        }
    }
    (out, flagged)
}

/// The day a recording's personnummer are read against (a 10-digit number's century), as the
/// search terms read them.
pub(super) fn today(now_ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive()
}

/// Those of `keys` with an open order in the SQLite store, read in the recording transaction
/// (which holds the one write lock, `BEGIN IMMEDIATE`).
pub(super) async fn open_in_sqlite(
    tx: &mut sqlx::SqliteConnection,
    keys: BTreeSet<Key>,
) -> Result<BTreeSet<Key>, super::StoreError> {
    let mut open = BTreeSet::new();
    for key in keys {
        let rows: Vec<(String, String)> =
            sqlx::query_as(SQL).bind(&key.0).fetch_all(&mut *tx).await?;
        if !at_unit(rows, &key.1).is_empty() {
            open.insert(key);
        }
    }
    Ok(open)
}

/// Those of `keys` with an open order in the PostgreSQL store, read in the recording
/// transaction after taking the advisory lock of each person and unit (`lock_namespace`), in
/// order: a recording of the same person and unit on another instance waits until this one
/// commits, and then reads (READ COMMITTED, a new snapshot per statement) its order.
pub(super) async fn open_in_postgres(
    tx: &mut sqlx::PgConnection,
    keys: BTreeSet<Key>,
    lock_namespace: i32,
) -> Result<BTreeSet<Key>, super::StoreError> {
    for key in &keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(lock_namespace)
            .bind(lock_key(key))
            .execute(&mut *tx)
            .await?;
    }
    let mut open = BTreeSet::new();
    for key in keys {
        let rows: Vec<(String, String)> =
            sqlx::query_as(SQL).bind(&key.0).fetch_all(&mut *tx).await?;
        if !at_unit(rows, &key.1).is_empty() {
            open.insert(key);
        }
    }
    Ok(open)
}
