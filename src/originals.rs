//! Where the raw email behind a case is kept, for the case page's form images and for
//! retention. Mail from the Maildir stays in its `cur/`; mail read by `process` stays in its
//! file; mail read over IMAP lives on the mail server, so a copy is kept in `[store]
//! originals_dir` (one file per source reference, named by its SHA-256). Retention removes
//! the Maildir file or the copy together with the message's personal data.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::source::Maildir;

#[derive(Debug, Clone)]
pub struct Originals {
    maildir: PathBuf,
    /// Copies of mail that is not in a local file; `None`: no copies kept.
    copies: Option<PathBuf>,
}

impl Originals {
    pub fn at(maildir: PathBuf, copies: Option<PathBuf>) -> Originals {
        Originals { maildir, copies }
    }

    /// Whether the raw email of `source_ref` is meant to be here: local mail always is, mail
    /// from a server only when copies are kept.
    pub fn keeps(&self, source_ref: &str) -> bool {
        Self::is_local(source_ref) || self.copies.is_some()
    }

    /// Mail that stays in a local file (the Maildir, or a `process` input).
    fn is_local(source_ref: &str) -> bool {
        Self::maildir_name(source_ref).is_some() || Self::file_path(source_ref).is_some()
    }

    /// The Maildir's `name` for a `maildir:` reference.
    fn maildir_name(source_ref: &str) -> Option<&str> {
        source_ref.strip_prefix("maildir:")
    }

    /// The file of a `file:PATH#N` reference (`process`).
    fn file_path(source_ref: &str) -> Option<PathBuf> {
        let rest = source_ref.strip_prefix("file:")?;
        Some(PathBuf::from(
            rest.rsplit_once('#').map_or(rest, |(p, _)| p),
        ))
    }

    fn copy_path(&self, source_ref: &str) -> Option<PathBuf> {
        let name = hex::encode(Sha256::digest(source_ref.as_bytes()));
        Some(self.copies.as_ref()?.join(format!("{name}.eml")))
    }

    /// Keeps a copy of `raw` when its source is not a local file (IMAP). Written to a
    /// temporary name and renamed, so a reader never sees half a file.
    pub fn keep(&self, source_ref: &str, raw: &[u8]) -> std::io::Result<()> {
        if Self::is_local(source_ref) {
            return Ok(());
        }
        let Some(path) = self.copy_path(source_ref) else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, raw)?;
        std::fs::rename(&tmp, &path)
    }

    /// Where the raw email of `source_ref` is, when it is still here.
    pub fn path(&self, source_ref: &str) -> Option<PathBuf> {
        if let Some(name) = Self::maildir_name(source_ref) {
            let md = Maildir::new(&self.maildir);
            return md.find("cur", name).or_else(|| md.find("new", name));
        }
        let path = Self::file_path(source_ref).or_else(|| self.copy_path(source_ref))?;
        path.is_file().then_some(path)
    }

    /// Removes the raw email of `source_ref` (retention): the Maildir file (in `cur/`, or
    /// `new/` if it never left) or the kept copy. A `process` input file is the user's own
    /// and stays.
    pub fn remove(&self, source_ref: &str) {
        let paths: Vec<PathBuf> = match Self::maildir_name(source_ref) {
            Some(name) => {
                let md = Maildir::new(&self.maildir);
                ["cur", "new"]
                    .iter()
                    .filter_map(|sub| md.find(sub, name))
                    .collect()
            }
            None if Self::file_path(source_ref).is_some() => Vec::new(),
            None => self.copy_path(source_ref).into_iter().collect(),
        };
        for path in paths {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(error = %e, "cannot remove an expired raw email")
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn originals(dir: &Path) -> Originals {
        Originals::at(dir.join("maildir"), Some(dir.join("originals")))
    }

    #[test]
    fn imap_mail_is_copied_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let o = originals(dir.path());
        let r = "imap:INBOX:1700000000:42";
        assert_eq!(o.path(r), None);
        o.keep(r, b"raw mail").unwrap();
        let path = o.path(r).expect("kept");
        assert_eq!(std::fs::read(&path).unwrap(), b"raw mail");
        assert!(!path.to_string_lossy().contains("INBOX"), "named by a hash");
        o.remove(r);
        assert_eq!(o.path(r), None);
    }

    #[test]
    fn maildir_and_file_mail_are_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let o = originals(dir.path());
        Maildir::create(&dir.path().join("maildir")).unwrap();
        std::fs::write(dir.path().join("maildir/cur/123.host:2,S"), b"m").unwrap();
        o.keep("maildir:123.host", b"m").unwrap();
        assert!(!dir.path().join("originals").exists());
        assert!(o.path("maildir:123.host").is_some());
        o.remove("maildir:123.host");
        assert!(o.path("maildir:123.host").is_none());

        let file = dir.path().join("in.eml");
        std::fs::write(&file, b"f").unwrap();
        let r = format!("file:{}#1", file.display());
        assert_eq!(o.path(&r), Some(file.clone()));
        o.remove(&r);
        assert!(file.exists(), "a process input file stays");
    }
}
