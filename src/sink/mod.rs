//! The reply-sink boundary: where replies leave. The embedded default writes .eml files.

pub mod file;

pub use file::FileSink;

use crate::store::OutboxRow;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// A temporary failure is retried with back-off; a permanent one fails the reply.
    pub temporary: bool,
    pub message: String,
}

/// The closed set of sinks.
pub enum ReplySink {
    File(FileSink),
}

impl ReplySink {
    /// Delivers one reply; returns a short note for the delivery record.
    pub async fn deliver(&self, reply: &OutboxRow) -> Result<String, SinkError> {
        match self {
            ReplySink::File(s) => s.deliver(reply),
        }
    }
}
