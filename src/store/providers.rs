//! The register of connected care providers as staff keep it (issue 22, SPEC §3.2): each
//! provider with its connection periods and the history of who changed what and why. Every
//! change is one transaction that checks the state it starts from and writes its event row.
//! The rule that reads it (`ProviderRegister::is_connected`) lives in `crate::providers`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::{dispatch_store, new_id, Store, StoreError};
use crate::providers::{CsvRow, Period, ProviderRegister};

/// One provider of the register with its periods (oldest first).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderEntry {
    /// Digits only: 10 for an organisation number, 12 for a sole trader's personnummer.
    pub key: String,
    pub name: String,
    pub kansli: String,
    pub note: String,
    pub changed_by: String,
    pub changed_at: i64,
    pub periods: Vec<Period>,
}

impl ProviderEntry {
    pub fn connected_on(&self, on: NaiveDate) -> bool {
        self.periods.iter().any(|p| p.covers(on))
    }

    /// The period that has not ended (a provider is disconnected when it has none).
    pub fn open_period(&self) -> Option<Period> {
        self.periods.iter().copied().find(|p| p.until.is_none())
    }

    /// `NNNNNN-NNNN`, or `YYYYMMDD-NNNN` for a sole trader.
    pub fn number(&self) -> String {
        let split = self.key.len() - 4;
        format!("{}-{}", &self.key[..split], &self.key[split..])
    }
}

/// One change of the register.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ProviderEvent {
    pub at: i64,
    pub actor: String,
    /// `added`, `changed`, `disconnected`, `reconnected`, `imported`.
    pub action: String,
    /// What changed, in Swedish (shown to staff as is).
    pub detail: String,
    pub comment: String,
}

/// What a provider's name, kansli and note are to become.
#[derive(Debug, Clone, Copy)]
pub struct ProviderDetails<'a> {
    pub name: &'a str,
    pub kansli: &'a str,
    pub note: &'a str,
}

/// Who changes the register, when, and why.
#[derive(Debug, Clone, Copy)]
pub struct RegisterActor<'a> {
    pub actor: &'a str,
    pub comment: &'a str,
    pub now_ms: i64,
}

/// How a change of the register went; only `Done` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterChange {
    Done,
    /// No provider has that number.
    Unknown,
    /// `add`: the provider is in the register already.
    Exists,
    /// `disconnect`: the provider is not connected (no open period).
    NotConnected,
    /// `reconnect`: the provider is connected already.
    AlreadyConnected,
    /// The date is before the start of the period it would end, or before the end of the last.
    DateOutOfOrder,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Number, name, connected from.
    pub added: Vec<(String, String, NaiveDate)>,
    /// Number, name before, name after.
    pub renamed: Vec<(String, String, String)>,
    pub unchanged: usize,
}

type PeriodRow = (String, String, Option<String>);
type ProviderRow = (String, String, String, String, String, i64);

fn date(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("provider_periods: bad date {s:?}")))
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn entries(
    providers: Vec<ProviderRow>,
    periods: Vec<PeriodRow>,
) -> Result<Vec<ProviderEntry>, StoreError> {
    let mut by_key: BTreeMap<String, Vec<Period>> = BTreeMap::new();
    for (key, from, until) in periods {
        by_key.entry(key).or_default().push(Period {
            from: date(&from)?,
            until: until.as_deref().map(date).transpose()?,
        });
    }
    let mut out: Vec<ProviderEntry> = providers
        .into_iter()
        .map(
            |(key, name, kansli, note, changed_by, changed_at)| ProviderEntry {
                periods: by_key.remove(&key).unwrap_or_default(),
                key,
                name,
                kansli,
                note,
                changed_by,
                changed_at,
            },
        )
        .collect();
    for e in &mut out {
        e.periods.sort_by_key(|p| p.from);
    }
    Ok(out)
}

const SELECT_PROVIDERS: &str =
    "SELECT key, name, kansli, note, changed_by, changed_at FROM providers";
const SELECT_PERIODS: &str = "SELECT key, connected_from, disconnected_from FROM provider_periods";
/// A new provider ($1 key, $2 name, $3 kansli, $4 note, $5 who, $6 when); nothing when another
/// change added it first.
const INSERT_PROVIDER: &str =
    "INSERT INTO providers (key, name, kansli, note, changed_by, changed_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING";
/// A new open period ($1 key, $2 from).
const OPEN_PERIOD: &str = "INSERT INTO provider_periods (key, connected_from) VALUES ($1, $2)";
/// One provider's periods, oldest first.
const PERIODS_OF: &str = "SELECT connected_from, disconnected_from FROM provider_periods
                          WHERE key = $1 ORDER BY connected_from";
/// How many register changes were made by anyone but `$1` (the system's CSV copy).
const EVENTS_BY_OTHERS: &str = "SELECT COUNT(*) FROM provider_events WHERE actor <> $1";

/// Writes one event row inside the caller's transaction.
macro_rules! event {
    ($tx:expr, $key:expr, $who:expr, $action:expr, $detail:expr) => {
        sqlx::query(
            "INSERT INTO provider_events (id, key, at, actor, action, detail, comment)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind($key)
        .bind($who.now_ms)
        .bind($who.actor)
        .bind($action)
        .bind($detail)
        .bind($who.comment)
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Every provider of the register, by name.
    pub async fn provider_entries(&self) -> Result<Vec<ProviderEntry>, StoreError> {
        let (providers, periods): (Vec<ProviderRow>, Vec<PeriodRow>) = dispatch_store!(self, s => (
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PROVIDERS} ORDER BY name, key")))
                .fetch_all(&s.pool)
                .await?,
            sqlx::query_as(SELECT_PERIODS).fetch_all(&s.pool).await?,
        ));
        entries(providers, periods)
    }

    /// The register as the checks read it.
    pub async fn provider_register(&self) -> Result<ProviderRegister, StoreError> {
        Ok(ProviderRegister::from_entries(
            self.provider_entries()
                .await?
                .into_iter()
                .map(|e| (e.key, e.name, e.periods)),
        ))
    }

    /// How many providers the register holds.
    pub async fn providers_count(&self) -> Result<i64, StoreError> {
        Ok(
            dispatch_store!(self, s => sqlx::query_scalar("SELECT COUNT(*) FROM providers")
            .fetch_one(&s.pool)
            .await?),
        )
    }

    /// One provider with its history (newest first).
    pub async fn provider_entry(
        &self,
        key: &str,
    ) -> Result<Option<(ProviderEntry, Vec<ProviderEvent>)>, StoreError> {
        let (providers, periods, events): (Vec<ProviderRow>, Vec<PeriodRow>, Vec<ProviderEvent>) = dispatch_store!(self, s => (
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PROVIDERS} WHERE key = $1")))
                .bind(key)
                .fetch_all(&s.pool)
                .await?,
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PERIODS} WHERE key = $1")))
                .bind(key)
                .fetch_all(&s.pool)
                .await?,
            sqlx::query_as(
                "SELECT at, actor, action, detail, comment FROM provider_events
                 WHERE key = $1 ORDER BY at DESC, id",
            )
            .bind(key)
            .fetch_all(&s.pool)
            .await?,
        ));
        Ok(entries(providers, periods)?.pop().map(|e| (e, events)))
    }

    /// Adds a provider connected from `from`.
    pub async fn provider_add(
        &self,
        key: &str,
        details: ProviderDetails<'_>,
        from: NaiveDate,
        who: RegisterActor<'_>,
    ) -> Result<RegisterChange, StoreError> {
        dispatch_store!(self, s => {
            let mut tx = s.pool.begin().await?;
            let added = sqlx::query(INSERT_PROVIDER)
            .bind(key)
            .bind(details.name)
            .bind(details.kansli)
            .bind(details.note)
            .bind(who.actor)
            .bind(who.now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 0 {
                return Ok(RegisterChange::Exists);
            }
            sqlx::query(OPEN_PERIOD)
                .bind(key)
                .bind(ymd(from))
                .execute(&mut *tx)
                .await?;
            let detail = format!("ansluten från {}; namn: {}; kansli: {}", ymd(from), details.name, details.kansli);
            event!(tx, key, who, "added", detail);
            tx.commit().await?;
        });
        Ok(RegisterChange::Done)
    }

    /// Changes a provider's name, kansli and note, and (`from`) the start of its open period
    /// (a date written wrong, or an application found to be older): not before the end of an
    /// earlier period.
    pub async fn provider_change(
        &self,
        key: &str,
        details: ProviderDetails<'_>,
        from: Option<NaiveDate>,
        who: RegisterActor<'_>,
    ) -> Result<RegisterChange, StoreError> {
        let from = from.map(ymd);
        dispatch_store!(self, s => {
            let mut tx = s.pool.begin().await?;
            let before: Option<(String, String, String)> =
                sqlx::query_as("SELECT name, kansli, note FROM providers WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((name, kansli, note)) = before else {
                return Ok(RegisterChange::Unknown);
            };
            let mut changed = Vec::new();
            for (what, old, new) in [
                ("namn", &name, details.name),
                ("kansli", &kansli, details.kansli),
                ("anteckning", &note, details.note),
            ] {
                if old != new {
                    changed.push(format!("{what}: {old} → {new}"));
                }
            }
            if let Some(from) = &from {
                let periods: Vec<(String, Option<String>)> = sqlx::query_as(PERIODS_OF)
                .bind(key)
                .fetch_all(&mut *tx)
                .await?;
                let Some((since, _)) = periods.iter().find(|(_, until)| until.is_none()) else {
                    return Ok(RegisterChange::NotConnected);
                };
                // Dates are YYYY-MM-DD: as text, their order is the calendar's.
                if periods.iter().any(|(_, until)| until.as_ref().is_some_and(|u| from < u)) {
                    return Ok(RegisterChange::DateOutOfOrder);
                }
                if since != from {
                    sqlx::query(
                        "UPDATE provider_periods SET connected_from = $3
                         WHERE key = $1 AND connected_from = $2 AND disconnected_from IS NULL",
                    )
                    .bind(key)
                    .bind(since)
                    .bind(from)
                    .execute(&mut *tx)
                    .await?;
                    changed.push(format!("ansluten från: {since} → {from}"));
                }
            }
            sqlx::query(
                "UPDATE providers SET name = $2, kansli = $3, note = $4, changed_by = $5, changed_at = $6
                 WHERE key = $1",
            )
            .bind(key)
            .bind(details.name)
            .bind(details.kansli)
            .bind(details.note)
            .bind(who.actor)
            .bind(who.now_ms)
            .execute(&mut *tx)
            .await?;
            let detail = match changed.is_empty() {
                true => "inga uppgifter ändrade".to_string(),
                false => changed.join("; "),
            };
            event!(tx, key, who, "changed", detail);
            tx.commit().await?;
        });
        Ok(RegisterChange::Done)
    }

    /// Ends the provider's open period on `from` (it is connected for emails dated before).
    pub async fn provider_disconnect(
        &self,
        key: &str,
        from: NaiveDate,
        who: RegisterActor<'_>,
    ) -> Result<RegisterChange, StoreError> {
        self.provider_period(key, from, who, false).await
    }

    /// Opens a new period from `from` for a provider that was disconnected.
    pub async fn provider_reconnect(
        &self,
        key: &str,
        from: NaiveDate,
        who: RegisterActor<'_>,
    ) -> Result<RegisterChange, StoreError> {
        self.provider_period(key, from, who, true).await
    }

    async fn provider_period(
        &self,
        key: &str,
        on: NaiveDate,
        who: RegisterActor<'_>,
        connect: bool,
    ) -> Result<RegisterChange, StoreError> {
        let on_text = ymd(on);
        dispatch_store!(self, s => {
            let mut tx = s.pool.begin().await?;
            let periods: Vec<(String, Option<String>)> = sqlx::query_as(PERIODS_OF)
            .bind(key)
            .fetch_all(&mut *tx)
            .await?;
            if periods.is_empty() {
                return Ok(RegisterChange::Unknown);
            }
            let open = periods.iter().find(|(_, until)| until.is_none());
            // Dates are YYYY-MM-DD: as text, their order is the calendar's.
            let (detail, action) = match (connect, open) {
                (false, None) => return Ok(RegisterChange::NotConnected),
                (true, Some(_)) => return Ok(RegisterChange::AlreadyConnected),
                (false, Some((since, _))) => {
                    if on_text <= *since {
                        return Ok(RegisterChange::DateOutOfOrder);
                    }
                    sqlx::query(
                        "UPDATE provider_periods SET disconnected_from = $3
                         WHERE key = $1 AND connected_from = $2 AND disconnected_from IS NULL",
                    )
                    .bind(key)
                    .bind(since)
                    .bind(&on_text)
                    .execute(&mut *tx)
                    .await?;
                    (format!("frånkopplad från {on_text}"), "disconnected")
                }
                (true, None) => {
                    let last_end = periods.iter().filter_map(|(_, until)| until.as_ref()).max();
                    if last_end.is_some_and(|end| on_text < *end) {
                        return Ok(RegisterChange::DateOutOfOrder);
                    }
                    sqlx::query(OPEN_PERIOD)
                        .bind(key)
                        .bind(&on_text)
                        .execute(&mut *tx)
                        .await?;
                    (format!("ansluten igen från {on_text}"), "reconnected")
                }
            };
            sqlx::query("UPDATE providers SET changed_by = $2, changed_at = $3 WHERE key = $1")
                .bind(key)
                .bind(who.actor)
                .bind(who.now_ms)
                .execute(&mut *tx)
                .await?;
            event!(tx, key, who, action, detail);
            tx.commit().await?;
        });
        Ok(RegisterChange::Done)
    }

    /// Whether a person (an actor other than `system`) has changed the register: until then
    /// it is a copy of the CSV that the CSV may replace (`casework::register::seed`).
    pub async fn providers_kept_by_staff(&self, system: &str) -> Result<bool, StoreError> {
        let n: i64 = dispatch_store!(self, s => sqlx::query_scalar(EVENTS_BY_OTHERS)
        .bind(system)
        .fetch_one(&s.pool)
        .await?);
        Ok(n > 0)
    }

    /// Replaces a register that only `system` has written (a copy of the CSV) with `rows`, in
    /// one transaction; false, and nothing changed, once a person has changed it.
    pub async fn provider_mirror(
        &self,
        rows: &[CsvRow],
        who: RegisterActor<'_>,
    ) -> Result<bool, StoreError> {
        dispatch_store!(self, s => {
            let mut tx = s.pool.begin().await?;
            let by_staff: i64 = sqlx::query_scalar(EVENTS_BY_OTHERS)
                    .bind(who.actor)
                    .fetch_one(&mut *tx)
                    .await?;
            if by_staff > 0 {
                return Ok(false);
            }
            for table in ["provider_events", "provider_periods", "providers"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.provider_import(rows, who, false).await?;
        Ok(true)
    }

    /// Imports register rows (SPEC §3.2 CSV): providers not in the register are added,
    /// connected from their date; a known provider whose name differs is renamed; nothing is
    /// deleted and no period of a known provider changes, so importing the same file again
    /// changes nothing. One transaction: all or nothing. `dry_run`: reports, writes nothing.
    pub async fn provider_import(
        &self,
        rows: &[CsvRow],
        who: RegisterActor<'_>,
        dry_run: bool,
    ) -> Result<ImportReport, StoreError> {
        // A number on several rows: its earliest date and first name, as the CSV register reads.
        let mut wanted: BTreeMap<&str, (&str, NaiveDate)> = BTreeMap::new();
        for row in rows {
            let entry = wanted.entry(&row.key).or_insert((&row.name, row.since));
            entry.1 = entry.1.min(row.since);
            if entry.0.is_empty() {
                entry.0 = &row.name;
            }
        }
        let mut report = ImportReport::default();
        dispatch_store!(self, s => {
            let mut tx = s.pool.begin().await?;
            for (key, (name, since)) in &wanted {
                let known: Option<String> =
                    sqlx::query_scalar("SELECT name FROM providers WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                match known {
                    None => {
                        // Another instance seeding the same file at once added it first.
                        let inserted = sqlx::query(INSERT_PROVIDER)
                        .bind(key)
                        .bind(name)
                        .bind("")
                        .bind("")
                        .bind(who.actor)
                        .bind(who.now_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if inserted == 0 {
                            report.unchanged += 1;
                            continue;
                        }
                        sqlx::query(OPEN_PERIOD)
                            .bind(key)
                            .bind(ymd(*since))
                            .execute(&mut *tx)
                            .await?;
                        let detail = format!("ansluten från {}; namn: {name}", ymd(*since));
                        event!(tx, key, who, "imported", detail);
                        report.added.push((key.to_string(), name.to_string(), *since));
                    }
                    Some(old) if !name.is_empty() && old != *name => {
                        sqlx::query("UPDATE providers SET name = $2, changed_by = $3, changed_at = $4 WHERE key = $1")
                            .bind(key)
                            .bind(name)
                            .bind(who.actor)
                            .bind(who.now_ms)
                            .execute(&mut *tx)
                            .await?;
                        let detail = format!("namn: {old} → {name}");
                        event!(tx, key, who, "imported", detail);
                        report.renamed.push((key.to_string(), old, name.to_string()));
                    }
                    Some(_) => report.unchanged += 1,
                }
            }
            match dry_run {
                true => tx.rollback().await?,
                false => tx.commit().await?,
            }
        });
        Ok(report)
    }
}
