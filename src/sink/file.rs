//! Replies as .eml files, written by lettre's file transport. The transport names files by a
//! fresh UUID, so a resend after a crash would leave a second file; the sink therefore lets the
//! transport write into a staging folder and renames the file to `<reply id>.eml`. The rename is
//! atomic and idempotent: however often a reply is delivered, there is one file per reply.

use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use lettre::{FileTransport, Transport};

use super::SinkError;
use crate::store::OutboxRow;

#[derive(Clone)]
pub struct FileSink {
    dir: PathBuf,
    staging: PathBuf,
    transport: FileTransport,
}

impl FileSink {
    pub fn open(dir: &Path) -> std::io::Result<FileSink> {
        let staging = dir.join(".staging");
        std::fs::create_dir_all(&staging)?;
        // Leftovers of a crash between write and rename: the reply is still pending and will
        // be written again.
        for entry in std::fs::read_dir(&staging)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(FileSink {
            dir: dir.to_path_buf(),
            transport: FileTransport::new(&staging),
            staging,
        })
    }

    /// Whether a file can be written in the staging folder now.
    pub fn probe(&self) -> Result<(), String> {
        let path = self.staging.join(".probe");
        std::fs::write(&path, b"probe")
            .and_then(|()| std::fs::remove_file(&path))
            .map_err(|e| format!("cannot write in {}: {e}", self.staging.display()))
    }

    pub fn path_of(&self, reply_id: &str) -> PathBuf {
        self.dir.join(format!("{reply_id}.eml"))
    }

    pub fn deliver(&self, reply: &OutboxRow) -> Result<String, SinkError> {
        let permanent = |message: String| SinkError {
            temporary: false,
            sink_down: false,
            message,
        };
        // A file that cannot be written is the folder's fault (full, read-only), not the reply's.
        let temporary = |message: String| SinkError {
            temporary: true,
            sink_down: true,
            message,
        };
        let from = reply
            .sender
            .parse()
            .map_err(|e| permanent(format!("bad sender address: {e}")))?;
        let to = reply
            .recipient
            .parse()
            .map_err(|e| permanent(format!("bad recipient address: {e}")))?;
        let envelope = Envelope::new(Some(from), vec![to]).map_err(|e| permanent(e.to_string()))?;
        let id = self
            .transport
            .send_raw(&envelope, reply.raw.as_bytes())
            .map_err(|e| temporary(format!("cannot write the reply file: {e}")))?;
        let written = self.staging.join(format!("{id}.eml"));
        let target = self.path_of(&reply.id);
        std::fs::rename(&written, &target)
            .map_err(|e| temporary(format!("cannot move the reply file: {e}")))?;
        Ok(format!("written to {}", target.display()))
    }
}
