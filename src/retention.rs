//! Retention (issue 5): personal data is kept no longer than `[retention]` allows. The store
//! erases the personal fields and keeps a minimal shell of each case; this module also removes
//! the raw email (from the Maildir, or the kept copy of IMAP mail), where the attachments live.

use crate::config::RetentionSettings;
use crate::originals::Originals;
use crate::store::{PurgeReport, Store, StoreError};

/// Runs one purge at `now_ms`, removing the raw emails of the erased messages from `originals`.
pub async fn purge(
    store: &Store,
    settings: &RetentionSettings,
    originals: Option<&Originals>,
    now_ms: i64,
) -> Result<PurgeReport, StoreError> {
    let report = store.purge(&settings.policy(), now_ms).await?;
    if let Some(originals) = originals {
        for source_ref in &report.source_refs {
            originals.remove(source_ref);
        }
    }
    tracing::info!(
        messages = report.messages,
        rejected_cases = report.rejected_cases,
        completed_cases = report.completed_cases,
        "retention purge done"
    );
    Ok(report)
}
