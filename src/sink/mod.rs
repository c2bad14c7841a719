//! The reply-sink boundary: where replies leave. The embedded default writes .eml files;
//! production sends through an SMTP relay.

pub mod file;
mod settings;
pub mod smtp;
mod smtp_session;

pub use file::FileSink;
pub use settings::{valid_hello_name, SinkKind, SinkSettings, SmtpSettings};
pub use smtp::{Delivery, SmtpSink};

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// A temporary failure is retried with back-off; a permanent one fails the reply.
    pub temporary: bool,
    /// The sink itself failed, not this reply (unreachable, or refusing every mail): once
    /// it answers again, the replies waiting for a retry go at once (`ReplySink::probe`).
    pub sink_down: bool,
    pub message: String,
}

impl ReplySink {
    /// Whether the sink answers now (the outbox worker asks while it is down): SMTP runs
    /// `SmtpSink::test_connection`; the file sink writes and removes a file in its folder.
    pub async fn probe(&self) -> Result<(), String> {
        match self {
            ReplySink::Smtp(smtp) => smtp.test_connection().await,
            ReplySink::File(file) => file.probe(),
        }
    }
}

/// The closed set of sinks.
pub enum ReplySink {
    File(FileSink),
    Smtp(SmtpSink),
}
