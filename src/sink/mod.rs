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
    /// Builds the configured sink: the reply folder (created when missing) or the SMTP relay's
    /// client (nothing is connected yet). `own_address` names us in EHLO by default.
    pub fn open(
        sink: &SinkSettings,
        smtp: &SmtpSettings,
        own_address: &str,
    ) -> anyhow::Result<ReplySink> {
        use anyhow::Context as _;
        Ok(match sink.kind {
            SinkKind::File => ReplySink::File(FileSink::open(&sink.dir).with_context(|| {
                format!(
                    "cannot open the reply folder (sink.dir = {})",
                    sink.dir.display()
                )
            })?),
            SinkKind::Smtp => ReplySink::Smtp(SmtpSink::open(smtp, own_address)?),
        })
    }

    /// Delivers one reply (the outbox worker's one verb for every sink). `hand_over` is the
    /// fence of a sink whose sending cannot be taken back: SMTP calls it after the whole
    /// message is written and before its final `.`, to commit that the reply is handed over;
    /// it says whether to go on (false: another instance holds the reply, `Declined`). The
    /// file sink never calls it: writing the same `<reply id>.eml` again is harmless.
    pub async fn deliver<F, Fut>(
        &self,
        reply: &crate::store::OutboxRow,
        hand_over: F,
    ) -> anyhow::Result<Delivery>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        match self {
            ReplySink::Smtp(smtp) => smtp.deliver(reply, hand_over).await,
            ReplySink::File(file) => {
                let (file, reply) = (file.clone(), reply.clone());
                let written = tokio::task::spawn_blocking(move || file.deliver(&reply)).await?;
                Ok(match written {
                    Ok(detail) => Delivery::Accepted(detail),
                    Err(e) => Delivery::NotDelivered(e),
                })
            }
        }
    }

    /// How many replies are delivered at once: one per kept SMTP connection; the file sink
    /// writes on every core.
    pub fn parallelism(&self) -> usize {
        match self {
            ReplySink::Smtp(smtp) => smtp.connections(),
            ReplySink::File(_) => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }

    /// How long a handed-over reply may wait for the server's answer before it is held in
    /// doubt; `None` for a sink without a hand-over.
    pub fn answer_deadline(&self) -> Option<std::time::Duration> {
        match self {
            ReplySink::Smtp(smtp) => Some(smtp.answer_deadline()),
            ReplySink::File(_) => None,
        }
    }

    /// Closes kept connections (SMTP says QUIT) before a command exits.
    pub async fn close(&self) {
        if let ReplySink::Smtp(smtp) = self {
            smtp.close().await;
        }
    }

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
