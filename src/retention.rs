//! Retention (issue 5): personal data is kept no longer than `[retention]` allows. The store
//! erases the personal fields and keeps a minimal shell of each case; this module also removes
//! the raw copy of each erased email from the Maildir, where the attachments live.

use std::path::Path;

use crate::config::RetentionSettings;
use crate::store::{PurgeReport, Store, StoreError};

/// Runs one purge at `now_ms`. `maildir` is the source Maildir whose `cur/` holds the raw mail.
pub async fn purge(
    store: &Store,
    settings: &RetentionSettings,
    maildir: Option<&Path>,
    now_ms: i64,
) -> Result<PurgeReport, StoreError> {
    let report = store.purge(&settings.policy(), now_ms).await?;
    if let Some(root) = maildir {
        for source_ref in &report.source_refs {
            if let Some(name) = source_ref.strip_prefix("maildir:") {
                remove_raw(root, name);
            }
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

/// Removes `cur/<name>:2,<flags>` (and `new/<name>`, if it never left).
fn remove_raw(root: &Path, name: &str) {
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if file.split(':').next() == Some(name) {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(error = %e, "cannot remove an expired message from the Maildir");
                }
            }
        }
    }
}
