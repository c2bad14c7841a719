//! Poison protection: an email's processing is noted before it starts and forgotten once the
//! email is settled. An email that comes round again with attempts still noted was being
//! handled when the process died (an abort under a memory limit, a kill, a crash outside the
//! workers); the intake quarantines it unread after [`MAX_UNFINISHED_ATTEMPTS`] of them.

use super::{dispatch_store, Store, StoreError};

/// Attempts that never finished after which an email is quarantined without being read again.
pub const MAX_UNFINISHED_ATTEMPTS: i64 = 2;

impl Store {
    /// Notes that processing of `source_ref` (with this content) starts now. Returns how many
    /// earlier attempts on the same content never finished.
    pub async fn begin_attempt(
        &self,
        source_ref: &str,
        content_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        dispatch_store!(self, s => {
            let attempts: i64 = sqlx::query_scalar(
                "INSERT INTO processing_attempts (source_ref, content_hash, attempts, first_at, last_at)
                 VALUES ($1, $2, 1, $3, $3)
                 ON CONFLICT (source_ref) DO UPDATE SET
                     attempts = CASE WHEN processing_attempts.content_hash = excluded.content_hash
                                     THEN processing_attempts.attempts + 1 ELSE 1 END,
                     first_at = CASE WHEN processing_attempts.content_hash = excluded.content_hash
                                     THEN processing_attempts.first_at ELSE excluded.first_at END,
                     content_hash = excluded.content_hash,
                     last_at = excluded.last_at
                 RETURNING attempts",
            )
            .bind(source_ref)
            .bind(content_hash)
            .bind(now_ms)
            .fetch_one(&s.pool)
            .await?;
            Ok(attempts - 1)
        })
    }

    /// How many attempts on `source_ref` with this content are noted and never finished.
    pub async fn unfinished_attempts(
        &self,
        source_ref: &str,
        content_hash: &str,
    ) -> Result<i64, StoreError> {
        dispatch_store!(self, s => {
            let attempts: Option<i64> = sqlx::query_scalar(
                "SELECT attempts FROM processing_attempts WHERE source_ref = $1 AND content_hash = $2",
            )
            .bind(source_ref)
            .bind(content_hash)
            .fetch_optional(&s.pool)
            .await?;
            Ok(attempts.unwrap_or(0))
        })
    }

    /// Forgets the attempt on `source_ref`: the email is settled (recorded, or waiting for KIV).
    pub async fn end_attempt(&self, source_ref: &str) -> Result<(), StoreError> {
        dispatch_store!(self, s => {
            sqlx::query("DELETE FROM processing_attempts WHERE source_ref = $1")
                .bind(source_ref)
                .execute(&s.pool)
                .await?;
            Ok(())
        })
    }
}
