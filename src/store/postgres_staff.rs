//! PostgreSQL side of the staff part of the store: the queries of `staff_queries.rs`, with a
//! case's JSON fields read through jsonb, and retention serialised between instances
//! (`PgStore::lock_purge`).

use sqlx::Row;

use super::postgres::{audit, insert_reply, PgStore};
use super::staff::*;
use super::staff_queries::case_summary_columns;
use super::{CaseFilter, CaseSummary, StoreError};

/// A text field of a case's JSON `fields`; sorted bytewise as SQLite sorts.
macro_rules! field {
    (sorted $col:literal, $key:literal) => {
        concat!(field!($col, $key), " COLLATE \"C\"")
    };
    ($col:literal, $key:literal) => {
        concat!("((", $col, "::jsonb) ->> '", $key, "')")
    };
}

super::staff_queries::staff_queries!(PgStore, sqlx::Postgres, field);
