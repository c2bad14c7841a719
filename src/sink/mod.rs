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
    pub message: String,
}

/// The closed set of sinks.
pub enum ReplySink {
    File(FileSink),
    Smtp(SmtpSink),
}
