//! A Maildir source: mail is taken from `new/` and moved to `cur/` (flag `S`, and `F` for
//! quarantined mail) only after its outcome is committed.

use std::path::{Path, PathBuf};

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
