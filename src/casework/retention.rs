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

/// Removes the erased IMAP mail from the server's folders too (the watched folder and the
/// folders of the outcomes). What fails is tried again at the next purge.
pub async fn erase_on_server(
    store: &Store,
    settings: &crate::config::Settings,
    now_ms: i64,
) -> Result<usize, StoreError> {
    if settings.source.kind != crate::config::SourceKind::Imap {
        return Ok(0);
    }
    let ids = store.expired_on_server().await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let imap = crate::source::ImapSource::new(
        &settings.imap,
        settings.limits.max_message_bytes,
        crate::source::ConnectionStatus::default(),
    );
    match imap.erase(&ids).await {
        Ok(removed) => {
            store.erased_on_server(&ids, now_ms).await?;
            tracing::info!(
                removed,
                "expired mail removed from the IMAP server's folders"
            );
            Ok(removed)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot remove expired mail from the IMAP server; the next purge tries again");
            Ok(0)
        }
    }
}
