//! `run`: takes mail from the configured source (a Maildir, or an IMAP folder with IDLE),
//! processes it and delivers replies through the outbox worker, until SIGINT or SIGTERM.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use crate::config::SourceKind;
use crate::intake::{Input, Intake, Recorder, Settled};
use crate::outbox::deliver_due;
use crate::sink::ReplySink;
use crate::source::{wait_stop, ConnectionStatus, ImapSource, Maildir};
use crate::store::Store;

/// How many emails wait, read, for their analysis at most (memory stays flat with a backlog).
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
            // The staff pages check a verified case again with the daemon's own KIV and register.
            crate::web::router(crate::web::WebState::with_intake(
                store.clone(),
                Arc::clone(&intake),
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
    let maildir = Arc::new(Maildir::create(&settings.source.maildir)?);
    tracing::info!(maildir = %settings.source.maildir.display(), "watching the Maildir");
    let recorder = Recorder::Store(store.clone());
    let poll = Duration::from_millis(settings.source.poll_interval_ms);
    while !*stop.borrow() {
        // One endless stream: the lister feeds new mail in as it arrives, and each email is
        // recorded and acknowledged as soon as it is analysed, so a long scan holds up nothing.
        let in_flight: InFlight = Arc::default();
        let (tx, rx) = mpsc::channel::<Input>(BATCH);
        let lister = tokio::spawn(list_new_mail(
            Arc::clone(&maildir),
            store.clone(),
            Arc::clone(&in_flight),
            tx,
            poll,
            stop.clone(),
        ));
        let inputs =
            futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|i| (i, rx)) });
        let processing = intake.process_stream(inputs, &recorder, |input, settled| {
            if let Settled::Recorded(outcome) = settled {
                let flags = if outcome.decision == crate::case::EmailOutcome::Quarantined {
                    "FS"
                } else {
                    "S"
                };
                maildir.acknowledge(std::path::Path::new(&input.display), flags)?;
                // Replies leave as soon as their case is committed.
                wake_outbox.notify_one();
            }
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&input.source_ref);
            Ok(())
        });
        tokio::pin!(processing);
        let mut stopping = stop.clone();
        let result = tokio::select! {
            r = &mut processing => r,
            _ = wait_stop(&mut stopping) => {
                // Emails still being read (a long scan) get a moment to finish; the rest stay
                // in new/ and are read again at the next start.
                tokio::time::timeout(Duration::from_secs(10), &mut processing).await.unwrap_or(Ok(()))
            }
        };
        lister.abort();
        let Err(e) = result else { break };
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
    Ok(())
}

/// Source references of the emails handed to processing and not yet settled.
type InFlight = Arc<std::sync::Mutex<HashSet<String>>>;

/// Lists `new/` every `poll` and sends each email that is not already being processed, not
/// waiting for its next KIV try, and not already recorded (committed before a crash but not
/// acknowledged: that one is only acknowledged).
async fn list_new_mail(
    maildir: Arc<Maildir>,
    store: Store,
    in_flight: InFlight,
    tx: mpsc::Sender<Input>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        if let Err(e) = list_round(&maildir, &store, &in_flight, &tx).await {
            tracing::error!(error = format!("{e:#}"), "cannot list the Maildir");
        }
        if tx.is_closed() {
            return;
        }
        tokio::select! {
            r = stop.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn list_round(
    maildir: &Maildir,
    store: &Store,
    in_flight: &InFlight,
    tx: &mpsc::Sender<Input>,
) -> anyhow::Result<()> {
    let files = maildir.list("new")?;
    if files.is_empty() {
        return Ok(());
    }
    let not_due = store
        .waiting_not_due(chrono::Utc::now().timestamp_millis())
        .await?;
    for path in files {
        let source_ref = Maildir::source_ref(&path);
        if not_due.contains(&source_ref)
            || in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&source_ref)
        {
            continue;
        }
        if store.source_recorded(&source_ref).await? {
            // Committed but not acknowledged (a crash, or this listing raced the
            // acknowledgement): acknowledge only. Gone already is fine.
            if let Err(e) = maildir.acknowledge(&path, "S") {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(error = %e, "cannot acknowledge a recorded message");
                }
            }
            continue;
        }
        match std::fs::read(&path) {
            Ok(raw) => {
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(source_ref.clone());
                let input = Input {
                    display: path.display().to_string(),
                    source_ref,
                    raw,
                };
                if tx.send(input).await.is_err() {
                    return Ok(());
                }
            }
            // Acknowledged meanwhile (the listing is older than the move), or unreadable
            // for now: the next round sees.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "cannot read a new message; will try again"),
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
    let originals = crate::originals::Originals::new(settings);
    let settings = settings.clone();
    Some(tokio::spawn(async move {
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = crate::retention::purge(&store, &retention, Some(&originals), now).await
            {
                tracing::error!(error = %e, "retention purge failed; will try again tomorrow");
            }
            if let Err(e) = crate::retention::erase_on_server(&store, &settings, now).await {
                tracing::error!(error = %e, "retention on the IMAP server failed; will try again tomorrow");
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
