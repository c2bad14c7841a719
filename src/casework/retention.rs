//! Retention (issue 5): personal data is kept no longer than `[retention]` allows. The store
//! erases the personal fields and keeps a minimal shell of each case; this module also removes
//! the raw email (from the Maildir, or the kept copy of IMAP mail), where the attachments live.

use crate::originals::Originals;
use crate::store::{PurgeReport, Store, StoreError};

/// `[retention]`: how long each outcome is kept.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Run the purge once a day inside `run`.
    pub enabled: bool,
    /// Ignored mail (auto-replies, bounces, duplicates), counted from its arrival.
    pub ignored_days: u64,
    /// Quarantined mail, counted from its arrival.
    pub quarantined_days: u64,
    /// Rejected cases (confirmed or not), counted from their last event.
    pub rejected_days: u64,
    /// Completed cases (card handed out, card deregistered), counted from their last event.
    pub completed_days: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            enabled: true,
            ignored_days: 30,
            quarantined_days: 90,
            rejected_days: 90,
            completed_days: 730,
        }
    }
}

impl RetentionSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        [
            ("ignored_days", self.ignored_days),
            ("quarantined_days", self.quarantined_days),
            ("rejected_days", self.rejected_days),
            ("completed_days", self.completed_days),
        ]
        .into_iter()
        .filter(|(_, days)| !(1..=36_500).contains(days))
        .map(|(key, _)| format!("retention.{key}: must be between 1 and 36500 days"))
        .collect()
    }

    pub fn policy(&self) -> crate::store::RetentionPolicy {
        let ms = |days: u64| (days.min(100_000) as i64) * crate::clock::DAY_MS;
        crate::store::RetentionPolicy {
            ignored_ms: ms(self.ignored_days),
            quarantined_ms: ms(self.quarantined_days),
            rejected_ms: ms(self.rejected_days),
            completed_ms: ms(self.completed_days),
        }
    }
}

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
/// `imap`: the IMAP source's settings and the largest email it reads; `None` when mail is not
/// read from an IMAP server (nothing to do).
pub async fn erase_on_server(
    store: &Store,
    imap: Option<(&crate::source::ImapSettings, usize)>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let Some((imap_settings, max_message_bytes)) = imap else {
        return Ok(0);
    };
    let ids = store.expired_on_server().await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let imap = crate::source::ImapSource::new(
        imap_settings,
        max_message_bytes,
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
