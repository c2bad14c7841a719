//! `run`: watches the Maildir, processes what arrives in `new/` and delivers replies through
//! the outbox worker, until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::intake::{Input, Intake, Recorder};
use crate::outbox::deliver_due;
use crate::sink::ReplySink;
use crate::source::Maildir;
use crate::store::Store;

/// How many new emails one round takes at most (they are analysed in parallel).
const BATCH: usize = 256;

pub async fn run(intake: Arc<Intake>, store: Store, sink: ReplySink) -> anyhow::Result<()> {
    let settings = intake.settings.clone();
    let maildir = Maildir::create(&settings.source.maildir)?;
    tracing::info!(maildir = %settings.source.maildir.display(), "watching the Maildir");
    let wake_outbox = Arc::new(Notify::new());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    let worker = {
        let store = store.clone();
        let wake = Arc::clone(&wake_outbox);
        let outbox = settings.outbox.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = deliver_due(&store, &sink, &outbox).await {
                    tracing::error!(error = %e, "outbox worker error");
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    };

    let recorder = Recorder::Store(store.clone());
    let poll = Duration::from_millis(settings.source.poll_interval_ms);
    loop {
        let files = match maildir.list("new") {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the Maildir");
                Vec::new()
            }
        };
        if files.is_empty() {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(poll) => continue,
            }
        }
        let mut inputs = Vec::new();
        for path in files.into_iter().take(BATCH) {
            let source_ref = Maildir::source_ref(&path);
            if store.source_recorded(&source_ref).await? {
                // Committed before a crash but not yet acknowledged: acknowledge only.
                if let Err(e) = maildir.acknowledge(&path, "S") {
                    tracing::error!(error = %e, "cannot acknowledge a recorded message");
                }
                continue;
            }
            match std::fs::read(&path) {
                Ok(raw) => inputs.push(Input {
                    display: path.display().to_string(),
                    source_ref,
                    raw,
                }),
                Err(e) => tracing::warn!(error = %e, "cannot read a new message; will try again"),
            }
        }
        let result = intake
            .process_batch(inputs, &recorder, |input, outcome| {
                let flags = if outcome.decision == "quarantined" {
                    "FS"
                } else {
                    "S"
                };
                maildir.acknowledge(std::path::Path::new(&input.display), flags)?;
                // Replies leave as soon as their case is committed, not at the end of the batch.
                wake_outbox.notify_one();
                Ok(())
            })
            .await;
        if let Err(e) = result {
            // The store or the Maildir failed (disk full, database locked …). What was not
            // committed stays in new/ and is read again; wait a little before trying.
            tracing::error!(
                error = format!("{e:#}"),
                "processing stopped; retrying shortly"
            );
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(poll * 25) => {}
            }
        }
        wake_outbox.notify_one();
        if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
            break;
        }
    }
    tracing::info!("stopping: delivering what is due");
    worker.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
