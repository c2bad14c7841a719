//! `run`: takes mail from the configured source (a Maildir, or an IMAP folder with IDLE),
//! processes it and delivers replies through the outbox worker, until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::config::SourceKind;
use crate::intake::{Input, Intake, Recorder};
use crate::outbox::deliver_due;
use crate::sink::ReplySink;
use crate::source::{ConnectionStatus, ImapSource, Maildir};
use crate::store::Store;

/// How many new emails one round takes at most (they are analysed in parallel).
const BATCH: usize = 256;

pub async fn run(intake: Arc<Intake>, store: Store, sink: ReplySink) -> anyhow::Result<()> {
    run_until(
        intake,
        store,
        sink,
        ConnectionStatus::default(),
        shutdown_signal(),
    )
    .await
}

/// Runs until `shutdown` completes. `imap_status` is updated by the IMAP source (for the
/// metrics); it stays `stopped` with the Maildir source.
pub async fn run_until(
    intake: Arc<Intake>,
    store: Store,
    sink: ReplySink,
    imap_status: ConnectionStatus,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let settings = intake.settings.clone();
    // One listener: health, metrics and (when enabled) the staff pages.
    let _http = if settings.http.listen.trim().is_empty() {
        None
    } else {
        let web = settings.web.enabled.then(|| {
            crate::web::router(crate::web::WebState::new(
                store.clone(),
                &settings,
                crate::clock::Clock::System,
            ))
        });
        Some(crate::ops::start(&settings.http.listen, store.clone(), web).await?)
    };
    let purger = start_purge(&settings, &store);
    let wake_outbox = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let worker = {
        let store = store.clone();
        let wake = Arc::clone(&wake_outbox);
        let outbox = settings.outbox.clone();
        let rate = settings.rate_limit.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = deliver_due(&store, &sink, &outbox, &rate).await {
                    tracing::error!(error = %format!("{e:#}"), "outbox worker error");
                }
                if *stop.borrow() {
                    break;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    r = stop.changed() => if r.is_err() { break },
                }
            }
        })
    };

    let source = async {
        match settings.source.kind {
            SourceKind::Maildir => {
                maildir_loop(&intake, &store, &wake_outbox, stop_rx.clone()).await
            }
            SourceKind::Imap => {
                let imap = ImapSource::new(
                    &settings.imap,
                    settings.limits.max_message_bytes,
                    imap_status,
                );
                imap.run(&intake, &store, &wake_outbox, stop_rx.clone())
                    .await;
                Ok(())
            }
        }
    };
    tokio::pin!(source);
    let result = tokio::select! {
        r = &mut source => r,
        _ = shutdown => {
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
            source.await
        }
    };
    let _ = stop_tx.send(true);
    if let Some(purger) = purger {
        purger.abort();
    }
    // One last round delivers what is due; a reply still pending waits for the next start.
    if tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .is_err()
    {
        tracing::warn!(
            "the outbox worker did not finish in time; pending replies go out at the next start"
        );
    }
    result
}

async fn maildir_loop(
    intake: &Arc<Intake>,
    store: &Store,
    wake_outbox: &Notify,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let settings = &intake.settings;
    let maildir = Maildir::create(&settings.source.maildir)?;
    tracing::info!(maildir = %settings.source.maildir.display(), "watching the Maildir");
    let recorder = Recorder::Store(store.clone());
    let poll = Duration::from_millis(settings.source.poll_interval_ms);
    while !*stop.borrow() {
        let files = match maildir.list("new") {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the Maildir");
                Vec::new()
            }
        };
        // Emails that wait for KIV are left alone until their next try is due.
        let not_due = if files.is_empty() {
            Default::default()
        } else {
            store
                .waiting_not_due(chrono::Utc::now().timestamp_millis())
                .await?
        };
        let mut inputs = Vec::new();
        for path in files.into_iter() {
            if inputs.len() >= BATCH {
                break;
            }
            let source_ref = Maildir::source_ref(&path);
            if not_due.contains(&source_ref) {
                continue;
            }
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
        if inputs.is_empty() {
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
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
                r = stop.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(poll * 25) => {}
            }
        }
    }
    Ok(())
}

/// The staff pages on `[web] listen` (same listener for health and metrics when merged).
/// Retention once at start-up and then once a day.
fn start_purge(
    settings: &crate::config::Settings,
    store: &Store,
) -> Option<tokio::task::JoinHandle<()>> {
    if !settings.retention.enabled {
        return None;
    }
    let store = store.clone();
    let retention = settings.retention.clone();
    let maildir = settings.source.maildir.clone();
    Some(tokio::spawn(async move {
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = crate::retention::purge(&store, &retention, Some(&maildir), now).await {
                tracing::error!(error = %e, "retention purge failed; will try again tomorrow");
            }
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        }
    }))
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
