//! The KIV snapshot of the embedded default as a file that may change under a running daemon
//! (issue 22): `poll` reads it again once it has changed and then stayed the same for one more
//! look (a file being written is not read half-way), and only a file that reads whole (it ends
//! with a line break, parses, and holds every kind of KIV entry) replaces the snapshot. A
//! broken file keeps the old snapshot: the log, `/readyz` and Översikt say so.

use std::path::Path;
use std::sync::{Arc, RwLock};

use super::snapshot::{KivLoadError, KivSnapshot};
use crate::file_watch::FileWatch;
use crate::telemetry::{component_problem, component_seen, Component};

/// What one `poll` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// Nothing changed, or a change waits to be stable.
    Unchanged,
    /// The new file replaced the snapshot.
    Replaced,
    /// The new file could not be used; the old snapshot stays (why, without personal data).
    Kept(String),
}

pub struct SnapshotFile {
    watch: FileWatch,
    current: RwLock<Arc<KivSnapshot>>,
}

impl SnapshotFile {
    pub fn load(path: &Path) -> Result<SnapshotFile, KivLoadError> {
        let watch = FileWatch::new(path);
        let snapshot = KivSnapshot::load(path)?;
        component_seen(Component::Directory, true);
        Ok(SnapshotFile {
            watch,
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    /// The snapshot the checks read now.
    pub fn current(&self) -> Arc<KivSnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads the file again when it changed and stayed the same since the last poll (see the
    /// module). Blocking: run it off the async threads.
    pub fn poll(&self) -> Reload {
        if !self.watch.settled_change() {
            return Reload::Unchanged;
        }
        let path = self.watch.path();
        let outcome = match std::fs::read(path) {
            Ok(bytes) if !bytes.ends_with(b"\n") => {
                Err("the file does not end with a line break (cut short?)".to_string())
            }
            Ok(_) => KivSnapshot::load(path).map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        match outcome {
            Ok(snapshot) => {
                let stats = snapshot.stats();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
                component_seen(Component::Directory, true);
                tracing::warn!(
                    persons = stats.persons,
                    units = stats.units,
                    "the KIV snapshot changed on disk and was read again"
                );
                Reload::Replaced
            }
            Err(why) => {
                let why =
                    format!("the changed KIV snapshot was not used, the earlier one stays: {why}");
                component_problem(Component::Directory, &why);
                component_seen(Component::Directory, false);
                tracing::error!(error = %why, "the KIV snapshot could not be read again");
                Reload::Kept(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/kiv.ldif");

    /// The fixture without the entry of one person (by personnummer).
    fn without(pnr: &str) -> String {
        FIXTURE
            .split("\n\n")
            .filter(|entry| !entry.contains(&format!("personalIdentityNumber: {pnr}")))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    #[test]
    fn a_settled_good_file_replaces_the_snapshot_and_a_cut_or_broken_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiv.ldif");
        std::fs::write(&path, FIXTURE).unwrap();
        let file = SnapshotFile::load(&path).unwrap();
        let pnr = "197506152342";
        assert!(
            file.current().person_by_pnr(pnr).is_some(),
            "the fixture has them"
        );
        assert_eq!(file.poll(), Reload::Unchanged);

        // A file cut short: seen changing, then kept out.
        let cut = &FIXTURE[..FIXTURE.len() / 2];
        std::fs::write(&path, cut.trim_end_matches('\n')).unwrap();
        assert_eq!(
            file.poll(),
            Reload::Unchanged,
            "not read while it may be written"
        );
        assert!(matches!(file.poll(), Reload::Kept(why) if why.contains("line break")));
        assert!(
            file.current().person_by_pnr(pnr).is_some(),
            "the old snapshot stays"
        );
        assert_eq!(file.poll(), Reload::Unchanged, "a bad version is read once");

        // A file that is not KIV at all.
        std::fs::write(&path, "version: 1\n").unwrap();
        file.poll();
        assert!(matches!(file.poll(), Reload::Kept(_)));
        assert!(file.current().person_by_pnr(pnr).is_some());

        // A good new version, once settled.
        let changed = without(pnr);
        assert!(changed.len() < FIXTURE.len(), "the person's entry is gone");
        std::fs::write(&path, &changed).unwrap();
        assert_eq!(file.poll(), Reload::Unchanged);
        assert_eq!(file.poll(), Reload::Replaced);
        assert!(file.current().person_by_pnr(pnr).is_none());
        assert_eq!(file.poll(), Reload::Unchanged);
    }
}
