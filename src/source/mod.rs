//! The mail-source boundary: a closed set of sources, each with the same two operations.
//! `fetch` hands out new emails, `acknowledge` marks the ones whose outcome is committed
//! (moved to Maildir `cur/`, moved or flagged on the IMAP server). The daemon's driver
//! (`daemon::drive`) runs analyse → record → acknowledge for whichever source is configured;
//! `process` reads files, which need no acknowledgement.

pub mod imap;
pub mod lease;
pub mod maildir;
mod settings;

pub use imap::{AfterAction, ImapAuth, ImapSettings};
pub use imap::{ConnectionState, ConnectionStatus, ImapSource};
pub use lease::{LeaseStatus, MailboxLease};
pub use maildir::{Maildir, MaildirSource};
pub use settings::{InstanceSettings, SourceKind, SourceSettings};

use std::collections::HashSet;
use std::path::PathBuf;

use tokio::sync::watch;

use crate::case::EmailOutcome;
use crate::store::{Store, StoreError};

/// One email taken from a source.
pub struct Input {
    /// Shown in output (`source` of the JSON line).
    pub display: String,
    /// The delivery's identity in the store.
    pub source_ref: String,
    pub raw: Vec<u8>,
    /// Set (to its size) for a message too large to download: `raw` is its header only, and
    /// the pipeline quarantines it unread.
    pub oversized: Option<u64>,
}

/// A settled email to acknowledge at its source, with the outcome that was committed.
pub struct Ack {
    pub source_ref: String,
    /// The input's `display` (for a Maildir, the file's path in `new/`).
    pub display: String,
    pub outcome: EmailOutcome,
}

/// Where the daemon takes mail from.
// One source per daemon: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// A Maildir on this machine (the embedded default).
    Maildir(MaildirSource),
    /// An IMAP folder (production).
    Imap(ImapSource),
}

impl Source {
    /// New emails, leaving out those in `in_flight` (handed out and not yet settled).
    pub async fn fetch(
        &self,
        store: &Store,
        in_flight: &HashSet<String>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Vec<Input>, StoreError> {
        match self {
            Source::Maildir(m) => m.fetch(store, in_flight).await,
            Source::Imap(i) => Ok(i.fetch(store, stop).await),
        }
    }

    /// Marks settled emails at the source, as soon as their outcome is committed: each with
    /// the outcome that was committed.
    pub async fn acknowledge(&self, acks: &[Ack]) -> anyhow::Result<()> {
        match self {
            Source::Maildir(m) => Ok(m.acknowledge(acks)?),
            Source::Imap(i) => {
                i.acknowledge(acks).await;
                Ok(())
            }
        }
    }

    /// Everything fetched so far is settled (IMAP: the folder's position moves past it).
    pub async fn batch_settled(&self, store: &Store) {
        if let Source::Imap(i) = self {
            i.batch_settled(store).await;
        }
    }

    /// Waits until new mail may be there (a poll interval, or IMAP IDLE), or the daemon stops.
    pub async fn wait(&self, stop: &mut watch::Receiver<bool>) {
        match self {
            Source::Maildir(m) => m.wait(stop).await,
            Source::Imap(i) => i.wait(stop).await,
        }
    }

    /// Whether the source is read one batch at a time (IMAP: the next fetch only once the
    /// batch is settled, when the folder's position has moved past it) rather than fetched
    /// again while a long scan is read (Maildir).
    pub fn reads_batches(&self) -> bool {
        matches!(self, Source::Imap(_))
    }

    /// Ends the source's connection, if it has one.
    pub async fn close(&self) {
        if let Source::Imap(i) = self {
            i.close().await;
        }
    }
}

/// Whether the daemon is stopping (the flag is set, or its sender is gone).
pub(crate) fn is_stopped(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Waits until the daemon stops.
pub(crate) async fn wait_stop(rx: &mut watch::Receiver<bool>) {
    loop {
        if is_stopped(rx) || rx.changed().await.is_err() {
            return;
        }
    }
}

/// The emails of `paths` for `process` (files, directories of .eml files, or Maildirs), in
/// the order of `collect_inputs`. Each run of `process` is its own delivery, so a file
/// processed again is a duplicate.
pub fn read_files(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    use anyhow::Context;
    let files = collect_inputs(paths)?;
    let mut inputs = Vec::with_capacity(files.len());
    for path in &files {
        let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let source_ref = format!("file:{}#{}", path.display(), uuid::Uuid::new_v4().simple());
        inputs.push(Input {
            display: path.display().to_string(),
            source_ref,
            raw,
            oversized: None,
        });
    }
    Ok(inputs)
}

/// Collects the .eml files of `paths` (files, directories of .eml files, or Maildirs), each
/// directory's files sorted by name.
pub fn collect_inputs(paths: &[std::path::PathBuf]) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
        })?;
        if meta.is_file() {
            out.push(path.clone());
            continue;
        }
        if Maildir::looks_like(path) {
            let md = Maildir::new(path);
            out.extend(md.list("cur")?);
            out.extend(md.list("new")?);
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")))
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}
