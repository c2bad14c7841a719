//! Leases between instances: a named lease (e.g. "imap:<mailbox>") is held by one holder until
//! it expires; its holder renews it before then, or another may take it. One table
//! `leases(name, holder, expires_at)`, the same statements on both backends (SQLite and
//! PostgreSQL both have `INSERT … ON CONFLICT … DO UPDATE … WHERE`, atomic on each).
//! Times are epoch milliseconds given by the caller, so tests need no clock.

use serde::Serialize;

use super::{PgStore, SqliteStore, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Lease {
    pub holder: String,
    pub expires_at: i64,
}

/// Takes a free or expired lease, or extends one's own. The row comes back only when the
/// update applied (the conflict's WHERE held) or it was inserted.
const TAKE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
     RETURNING holder";
/// Only the holder renews, and only a lease that has not run out (else it must take it again,
/// since another may have taken it meanwhile).
const RENEW: &str =
    "UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2 AND expires_at > $4";
const RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
const STATE: &str = "SELECT holder, expires_at FROM leases WHERE name = $1";

macro_rules! lease_impl {
    ($store:ty) => {
        impl $store {
            pub async fn try_take_lease(
                &self,
                name: &str,
                holder: &str,
                ttl_ms: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let row: Option<String> = sqlx::query_scalar(TAKE)
                    .bind(name)
                    .bind(holder)
                    .bind(now_ms.saturating_add(ttl_ms))
                    .bind(now_ms)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.is_some())
            }

            pub async fn renew_lease(
                &self,
                name: &str,
                holder: &str,
                ttl_ms: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(RENEW)
                    .bind(name)
                    .bind(holder)
                    .bind(now_ms.saturating_add(ttl_ms))
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            pub async fn release_lease(
                &self,
                name: &str,
                holder: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(RELEASE)
                    .bind(name)
                    .bind(holder)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            pub async fn lease_state(&self, name: &str) -> Result<Option<Lease>, StoreError> {
                Ok(sqlx::query_as::<_, Lease>(STATE)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }
        }
    };
}

lease_impl!(SqliteStore);
lease_impl!(PgStore);

impl Store {
    /// Takes the lease `name` for `holder` until `now_ms + ttl_ms` if it is free, expired, or
    /// already `holder`'s. True when `holder` holds it now.
    pub async fn try_take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        super::dispatch_store!(self, s => s.try_take_lease(name, holder, ttl_ms, now_ms).await)
    }

    /// Extends `holder`'s unexpired lease to `now_ms + ttl_ms`. False: it is lost (expired or
    /// taken by another); stop acting on it.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        super::dispatch_store!(self, s => s.renew_lease(name, holder, ttl_ms, now_ms).await)
    }

    /// Gives the lease up (at a clean stop), if `holder` still holds it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        super::dispatch_store!(self, s => s.release_lease(name, holder).await)
    }

    /// Who holds the lease and until when (possibly expired); `None`: never taken or released.
    pub async fn lease_state(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        super::dispatch_store!(self, s => s.lease_state(name).await)
    }
}
