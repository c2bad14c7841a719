//! Moving a store from SQLite to PostgreSQL (`tjid-intake migrate-store`): every table is
//! copied in dependency order inside one PostgreSQL transaction, so the target is either the
//! whole copy or untouched. The target must be empty. The year counters are copied with the
//! cases, so new case numbers continue where the SQLite store stopped.

use sqlx::Row;

use super::{PgStore, SqliteStore, StoreError};

/// Tables in an order that satisfies the foreign keys. Every table of the schema is here; a
/// test (`store_contract`) checks that nothing is left behind.
pub const TABLES: &[&str] = &[
    "messages",
    "case_numbers",
    "cases",
    "case_terms",
    "case_reasons",
    "outbox",
    "delivery_attempts",
    "audit",
    "kiv_waiting",
    "users",
    "sessions",
    "known_cards",
    "imap_state",
    "bounces",
    "providers",
    "provider_periods",
    "provider_events",
];

/// Rows per INSERT (each column travels as one array).
const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MigrateStoreError {
    #[error("--from must be sqlite:PATH, got {0:?}")]
    BadSource(String),
    #[error("--to must be a postgres:// URL")]
    BadTarget,
    #[error("the target database is not empty (table {table} has {rows} rows): refusing to copy into it")]
    TargetNotEmpty { table: String, rows: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MigrateStoreError {
    fn from(e: sqlx::Error) -> Self {
        MigrateStoreError::Store(StoreError::Query(e))
    }
}

/// Copies the SQLite store at `from` (`sqlite:PATH`) into the PostgreSQL database at `to`.
/// Both schemas are brought up to date first. Returns (table, rows copied).
pub async fn sqlite_to_postgres(
    from: &str,
    to: &str,
) -> Result<Vec<(String, u64)>, MigrateStoreError> {
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| MigrateStoreError::BadSource(from.to_string()))?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(MigrateStoreError::BadTarget);
    }
    if !std::path::Path::new(path).is_file() {
        return Err(MigrateStoreError::BadSource(format!(
            "{from} (no such file)"
        )));
    }
    let source = SqliteStore::open(std::path::Path::new(path)).await?;
    let target = PgStore::open(to).await?;
    copy(&source, &target).await
}

async fn copy(
    source: &SqliteStore,
    target: &PgStore,
) -> Result<Vec<(String, u64)>, MigrateStoreError> {
    let mut tx = target.pool.begin().await?;
    // Nobody writes the target while it fills (an instance started too early waits).
    for table in TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE {table} IN EXCLUSIVE MODE"
        )))
        .execute(&mut *tx)
        .await?;
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await?;
        if rows > 0 {
            return Err(MigrateStoreError::TargetNotEmpty {
                table: table.to_string(),
                rows,
            });
        }
    }
    let mut report = Vec::new();
    for table in TABLES {
        // The target's columns decide what is copied (`audit.seq` is generated there, and
        // `cases.unit_hsaid` on both sides).
        let columns: Vec<(String, String)> = sqlx::query(
            "SELECT column_name::text AS name, data_type::text AS ty FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
               AND is_identity = 'NO' AND is_generated = 'NEVER' ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("ty")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let list = names.join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {list} FROM {table} ORDER BY rowid"
        )))
        .fetch_all(&source.pool)
        .await?;
        let unnest: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| {
                let array = if ty == "bigint" { "bigint[]" } else { "text[]" };
                format!("${}::{array}", i + 1)
            })
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({list}) SELECT * FROM UNNEST({})",
            unnest.join(", ")
        );
        for chunk in rows.chunks(BATCH) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (i, (_, ty)) in columns.iter().enumerate() {
                if ty == "bigint" {
                    let values = chunk
                        .iter()
                        .map(|r| r.try_get::<Option<i64>, _>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    query = query.bind(values);
                } else {
                    let values = chunk
                        .iter()
                        .map(|r| r.try_get::<Option<String>, _>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    query = query.bind(values);
                }
            }
            query.execute(&mut *tx).await?;
        }
        report.push((table.to_string(), rows.len() as u64));
    }
    tx.commit().await?;
    Ok(report)
}
