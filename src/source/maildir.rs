//! A Maildir source: mail is taken from `new/` and moved to `cur/` (flag `S`, and `F` for
//! quarantined mail) only after its outcome is committed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::{Ack, Input};
use crate::case::EmailOutcome;
use crate::store::{Store, StoreError};

pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    pub fn new(root: &Path) -> Maildir {
        Maildir {
            root: root.to_path_buf(),
        }
    }

    pub fn looks_like(path: &Path) -> bool {
        path.join("new").is_dir() && path.join("cur").is_dir()
    }

    /// Opens a Maildir, creating `new/`, `cur/` and `tmp/` when missing.
    pub fn create(root: &Path) -> std::io::Result<Maildir> {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Maildir::new(root))
    }

    /// Files in `new/` or `cur/`, sorted by name.
    pub fn list(&self, sub: &str) -> std::io::Result<Vec<PathBuf>> {
        let dir = self.root.join(sub);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(".")
                    .starts_with('.')
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// The identity of a delivery: its unique name without the info part.
    pub fn source_ref(path: &Path) -> String {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        format!("maildir:{}", name.split(':').next().unwrap_or(name))
    }

    /// The file in `sub` (`new` or `cur`) whose unique name, without the info part, is `name`.
    pub fn find(&self, sub: &str, name: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.root.join(sub))
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().split(':').next() == Some(name))
            .map(|e| e.path())
    }

    /// Moves a message from `new/` to `cur/` with the given flags.
    pub fn acknowledge(&self, path: &Path, flags: &str) -> std::io::Result<PathBuf> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let base = name.split(':').next().unwrap_or(name);
        let target = self.root.join("cur").join(format!("{base}:2,{flags}"));
        std::fs::rename(path, &target)?;
        Ok(target)
    }

    /// Puts a processed message back for processing (staff asked for it): copies
    /// `cur/<name>:2,…` to `new/<name>.igen<now>` through `tmp/`, as an MTA delivers.
    pub fn requeue(&self, name: &str, now_ms: i64) -> std::io::Result<()> {
        let source = self.find("cur", name).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "original not found")
        })?;
        let new_name = format!("{name}.igen{now_ms}");
        let tmp = self.root.join("tmp").join(&new_name);
        std::fs::copy(&source, &tmp)?;
        std::fs::rename(&tmp, self.root.join("new").join(&new_name))
    }
}

/// The daemon's Maildir source: lists `new/` every poll interval.
pub struct MaildirSource {
    maildir: Maildir,
    poll: Duration,
}

impl MaildirSource {
    /// Opens the Maildir (creating it when missing).
    pub fn open(root: &Path, poll: Duration) -> std::io::Result<MaildirSource> {
        Ok(MaildirSource {
            maildir: Maildir::create(root)?,
            poll,
        })
    }

    /// The emails in `new/` that are not already being processed, not waiting for their next
    /// KIV try, and not already recorded (committed before a crash but not acknowledged: that
    /// one is only acknowledged here). A listing that fails is logged and tried at the next
    /// poll.
    pub async fn fetch(
        &self,
        store: &Store,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<Input>, StoreError> {
        let files = match self.maildir.list("new") {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cannot list the Maildir");
                return Ok(Vec::new());
            }
        };
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let not_due = store
            .waiting_not_due(chrono::Utc::now().timestamp_millis())
            .await?;
        let mut inputs = Vec::new();
        for path in files {
            let source_ref = Maildir::source_ref(&path);
            if not_due.contains(&source_ref) || in_flight.contains(&source_ref) {
                continue;
            }
            if store.source_recorded(&source_ref).await? {
                // Committed but not acknowledged (a crash, or this listing raced the
                // acknowledgement): acknowledge only. Gone already is fine.
                if let Err(e) = self.maildir.acknowledge(&path, "S") {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::error!(error = %e, "cannot acknowledge a recorded message");
                    }
                }
                continue;
            }
            match std::fs::read(&path) {
                Ok(raw) => inputs.push(Input {
                    display: path.display().to_string(),
                    source_ref,
                    raw,
                    oversized: None,
                }),
                // Acknowledged meanwhile (the listing is older than the move), or unreadable
                // for now: the next round sees.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "cannot read a new message; will try again"),
            }
        }
        Ok(inputs)
    }

    /// Moves settled emails from `new/` to `cur/`: flag `S`, and `FS` for quarantined mail.
    pub fn acknowledge(&self, acks: &[Ack]) -> std::io::Result<()> {
        for ack in acks {
            let flags = match ack.outcome {
                EmailOutcome::Quarantined => "FS",
                _ => "S",
            };
            // The input's display is its path in `new/`.
            self.maildir.acknowledge(Path::new(&ack.display), flags)?;
        }
        Ok(())
    }

    /// Waits one poll interval, or until the daemon stops.
    pub async fn wait(&self, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.poll) => {}
            _ = super::wait_stop(stop) => {}
        }
    }
}
