//! SQLite side of the staff part of the store: the queries of `staff_queries.rs`, with a
//! case's JSON fields read by `json_extract`.

use sqlx::Row;

use super::sqlite::{audit, insert_reply, SqliteStore};
use super::staff::*;
use super::staff_queries::case_summary_columns;
use super::{CaseFilter, CaseSummary, StoreError};

/// A text field of a case's JSON `fields`.
macro_rules! field {
    (sorted $col:literal, $key:literal) => {
        field!($col, $key)
    };
    ($col:literal, $key:literal) => {
        concat!("json_extract(", $col, ", '$.", $key, "')")
    };
}

super::staff_queries::staff_queries!(SqliteStore, sqlx::Sqlite, field);

impl SqliteStore {
    /// One daemon sends and purges from one SQLite file: nothing to serialise.
    async fn lock_purge(_tx: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }
}
