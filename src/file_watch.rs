//! Noticing that a file a running daemon reads (the KIV snapshot, the provider register's
//! CSV) has changed on disk, without reading it: by its length and modification time. A
//! change counts once it has stayed the same for one more look, so a file being written is
//! not read half-way.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

pub struct FileWatch {
    path: PathBuf,
    /// The version in use (`None`: no file), and a different one seen at the last look.
    versions: Mutex<(Option<Stamp>, Option<Option<Stamp>>)>,
}

impl FileWatch {
    /// Watches `path` from the version on disk now (the one the caller has just read).
    pub fn new(path: &Path) -> FileWatch {
        FileWatch {
            path: path.to_path_buf(),
            versions: Mutex::new((stamp(path), None)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once for each settled change: the file differs from the version in use and is
    /// the same as at the previous look. The caller then reads it (whatever it holds: a
    /// broken version is not offered again until it changes).
    pub fn settled_change(&self) -> bool {
        let now = stamp(&self.path);
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let (in_use, seen) = *versions;
        if now == in_use {
            versions.1 = None;
            return false;
        }
        if seen != Some(now) {
            // Changed since the last look: perhaps still being written.
            versions.1 = Some(now);
            return false;
        }
        *versions = (now, None);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_once_after_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "a\n").unwrap();
        let watch = FileWatch::new(&path);
        assert!(!watch.settled_change());
        std::fs::write(&path, "ab\n").unwrap();
        assert!(
            !watch.settled_change(),
            "seen once: perhaps still being written"
        );
        assert!(watch.settled_change(), "the same twice: settled");
        assert!(!watch.settled_change(), "offered once");
        std::fs::remove_file(&path).unwrap();
        assert!(!watch.settled_change());
        assert!(watch.settled_change(), "a removed file is a change too");
    }
}
