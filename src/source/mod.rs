//! The mail-source boundary. The embedded default reads a Maildir; production reads an IMAP
//! folder; `process` reads .eml files.

pub mod imap;
pub mod maildir;

pub use imap::{ConnectionState, ConnectionStatus, ImapSource};
pub use maildir::Maildir;

use tokio::sync::watch;

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
