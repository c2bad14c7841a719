//! `run`: takes mail from the configured source (a Maildir, or an IMAP folder with IDLE),
//! processes it and delivers replies through the outbox worker, until SIGINT or SIGTERM.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use crate::case::EmailOutcome;
use crate::config::{Settings, SourceKind};
use crate::outbox::{deliver_due, sink_back};
use crate::pipeline::{self, Intake, Recorder};
use crate::sink::ReplySink;
use crate::source::{
    is_stopped, wait_stop, Ack, ConnectionStatus, ImapSource, Input, LeaseStatus, MailboxLease,
    MaildirSource, Source,
};
use crate::store::Store;

/// How many emails wait, read, for their analysis at most (memory stays flat with a backlog).
const BATCH: usize = 256;

pub async fn run(
    settings: Settings,
    intake: Arc<Intake>,
    store: Store,
    sink: ReplySink,
) -> anyhow::Result<()> {
    run_until(
        settings,
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
    settings: Settings,
    intake: Arc<Intake>,
    store: Store,
    sink: ReplySink,
    imap_status: ConnectionStatus,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = store.named(&settings.instance.name);
    let lease = (settings.source.kind == SourceKind::Imap)
        .then(|| LeaseStatus::new(&settings.imap, &settings.instance));
    let ready = crate::app::ops::Readiness {
        imap: (settings.source.kind == SourceKind::Imap).then(|| imap_status.clone()),
        lease: lease.clone(),
        directory: match settings.directory.kind {
            crate::directory::DirectoryKind::Ldap => "ldap",
            crate::directory::DirectoryKind::Ldif => "snapshot",
        },
        sink: Some(match &sink {
            ReplySink::Smtp(_) => "smtp",
            ReplySink::File(_) => "file",
        }),
    };
    // One listener: health, metrics and (when enabled) the staff pages.
    let _http = if settings.http.listen.trim().is_empty() {
        None
    } else {
        let web = settings.web.enabled.then(|| {
            // The staff pages check a verified case again with the daemon's own KIV and register.
            crate::web::router(crate::web::WebState::with_intake(
                store.clone(),
                &settings.web_parts(),
                Arc::clone(&intake),
                crate::clock::Clock::System,
            ))
        });
        Some(crate::app::ops::start(&settings.http.listen, store.clone(), ready, web).await?)
    };
    let dropped = store.drop_own_stale_claims().await?;
    if dropped > 0 {
        tracing::info!(
            replies = dropped,
            "replies taken before a stop are sent again"
        );
    }
    // The register of connected providers is the store's (seeded from the CSV when empty),
    // read again every few seconds: a change on the staff pages decides the next email.
    let csv_watch = crate::file_watch::FileWatch::new(&settings.providers.csv);
    crate::casework::register::seed_and_load(&store, &intake, &settings.providers.csv).await?;
    let register_refresh = crate::casework::register::start_refresh(&intake, &store, csv_watch);
    let snapshot_watch = start_snapshot_watch(&intake);
    let purger = start_purge(&settings, &store);
    let kiv_prober = start_kiv_prober(&intake, &store);
    let store_watch = start_store_watch(&store);
    let wake_outbox = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let worker = {
        let store = store.clone();
        let wake = Arc::clone(&wake_outbox);
        let outbox = settings.outbox.clone();
        let rate = settings.rate_limit.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            // While the sink is down it is asked every few seconds whether it answers again;
            // then the replies waiting for a retry go at once, not after their back-off.
            let mut sink_down = false;
            let mut probed = std::time::Instant::now();
            let mut tidy = crate::outbox::Tidy::default();
            loop {
                if sink_down && probed.elapsed() >= crate::outbox::PROBE_EVERY {
                    probed = std::time::Instant::now();
                    match sink_back(&store, &sink).await {
                        Ok(back) => sink_down = !back,
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "outbox worker error")
                        }
                    }
                }
                match deliver_due(&store, &sink, &outbox, &rate).await {
                    Ok(report) => {
                        sink_down = report.sink_down || (sink_down && report.sent == 0);
                        if report.sink_down {
                            probed = std::time::Instant::now();
                        }
                        tidy.after(&store, &report).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "outbox worker error");
                    }
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
            // The kept SMTP connections end with QUIT, not a dropped socket.
            sink.close().await;
        })
    };

    let source = async {
        let retry_after = Duration::from_millis(settings.source.poll_interval_ms) * 25;
        match settings.source.kind {
            SourceKind::Maildir => {
                let poll = Duration::from_millis(settings.source.poll_interval_ms);
                let maildir = MaildirSource::open(&settings.source.maildir, poll)?;
                tracing::info!(maildir = %settings.source.maildir.display(), "watching the Maildir");
                crate::telemetry::component_seen(crate::telemetry::Component::Mailbox, true);
                let source = Source::Maildir(maildir);
                drive(
                    &source,
                    &intake,
                    &store,
                    &wake_outbox,
                    stop_rx.clone(),
                    retry_after,
                )
                .await
            }
            SourceKind::Imap => {
                let source = Source::Imap(ImapSource::new(
                    &settings.imap,
                    settings.limits.max_message_bytes,
                    imap_status,
                ));
                // Several instances may share the mailbox: only the lease's holder reads it.
                let status = lease.clone().expect("set for IMAP");
                let lease = MailboxLease::new(store.clone(), &settings.imap, status);
                let (source, intake, store, wake) = (&source, &intake, &store, &*wake_outbox);
                lease
                    .read_while_held(stop_rx.clone(), |held| {
                        drive(source, intake, store, wake, held, retry_after)
                    })
                    .await
            }
        }
    };
    tokio::pin!(source);
    let watchdog = super::systemd::start_watchdog();
    super::systemd::ready();
    let result = tokio::select! {
        r = &mut source => r,
        _ = shutdown => {
            tracing::info!("stopping");
            super::systemd::stopping();
            let _ = stop_tx.send(true);
            source.await
        }
    };
    let _ = stop_tx.send(true);
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if let Some(prober) = kiv_prober {
        prober.abort();
    }
    store_watch.abort();
    register_refresh.abort();
    if let Some(watch) = snapshot_watch {
        watch.abort();
    }
    if let Some(purger) = purger {
        purger.abort();
    }
    // One last round delivers what is due; a reply still pending waits for the next start,
    // and one handed over whose answer has not come is held in doubt by the next start.
    if tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .is_err()
    {
        tracing::warn!(
            "the outbox worker did not finish in time; pending replies go out at the next start, a reply still awaiting the SMTP server's answer will be held in doubt for staff"
        );
    }
    result
}

/// The one driver for every source: fetch → analyse → record → acknowledge, until `stop`.
///
/// A feeder fetches from the source and hands each email to the intake, which analyses them
/// in parallel and records each as soon as it is done (a long scan holds up no other email's
/// reply). A settled email is acknowledged at its source at once. A source read in batches
/// (IMAP) is told when its batch is settled, and only then fetched again.
pub async fn drive(
    source: &Source,
    intake: &Arc<Intake>,
    store: &Store,
    wake_outbox: &Notify,
    mut stop: watch::Receiver<bool>,
    retry_after: Duration,
) -> anyhow::Result<()> {
    let recorder = Recorder::Store(store.clone());
    let recorder = &recorder;
    while !is_stopped(&stop) {
        let in_flight: InFlight = Arc::default();
        let settled_batch = Notify::new();
        let (tx, rx) = mpsc::channel::<Input>(BATCH);
        let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<(Settled, Input)>();
        let inputs =
            futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|i| (i, rx)) });
        let feeding = feed(source, store, &in_flight, &settled_batch, tx, stop.clone());
        let processing = async move {
            intake
                .process_stream(inputs, recorder, |input, settled| {
                    let outcome = match settled {
                        pipeline::Settled::Recorded(outcome) => {
                            // Replies leave as soon as their case is committed.
                            wake_outbox.notify_one();
                            Settled::Recorded(outcome.decision)
                        }
                        pipeline::Settled::Waiting(_) => Settled::Waiting,
                    };
                    let input = Input {
                        display: input.display.clone(),
                        source_ref: input.source_ref.clone(),
                        raw: Vec::new(),
                        oversized: None,
                    };
                    let _ = settled_tx.send((outcome, input));
                    Ok(())
                })
                .await
        };
        let acknowledging = async {
            while let Some(first) = settled_rx.recv().await {
                // Each email is acknowledged as soon as it is committed; those settled in the
                // meantime go along (one MOVE for several under load).
                let mut settled = vec![first];
                while let Ok(more) = settled_rx.try_recv() {
                    settled.push(more);
                }
                let acks: Vec<Ack> = settled
                    .iter()
                    .filter_map(|(s, input)| match s {
                        Settled::Recorded(outcome) => Some(Ack {
                            source_ref: input.source_ref.clone(),
                            display: input.display.clone(),
                            outcome: *outcome,
                        }),
                        Settled::Waiting => None,
                    })
                    .collect();
                source.acknowledge(&acks).await?;
                let all_settled = {
                    let mut f = in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    for (_, input) in &settled {
                        f.remove(&input.source_ref);
                    }
                    f.is_empty()
                };
                if all_settled {
                    source.batch_settled(store).await;
                    settled_batch.notify_one();
                }
            }
            anyhow::Ok(())
        };
        let work = async {
            tokio::try_join!(
                async {
                    feeding.await;
                    anyhow::Ok(())
                },
                processing,
                acknowledging
            )
            .map(|_| ())
        };
        tokio::pin!(work);
        let mut stopping = stop.clone();
        let result = tokio::select! {
            r = &mut work => r,
            _ = wait_stop(&mut stopping) => {
                // Emails still being read (a long scan) get a moment to finish; the rest stay
                // at the source and are read again at the next start.
                tokio::time::timeout(Duration::from_secs(10), &mut work).await.unwrap_or(Ok(()))
            }
        };
        let Err(e) = result else { break };
        // The store or the source failed (disk full, database locked …). What was not
        // committed stays at the source and is read again; wait a little before trying.
        tracing::error!(
            error = format!("{e:#}"),
            "processing stopped; retrying shortly"
        );
        tokio::select! {
            r = stop.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(retry_after) => {}
        }
    }
    source.close().await;
    Ok(())
}

/// How one email was settled, as the source needs to know it.
enum Settled {
    Recorded(EmailOutcome),
    /// Waits for KIV: stays at the source, not acknowledged.
    Waiting,
}

/// Source references of the emails handed to processing and not yet acknowledged.
type InFlight = Arc<std::sync::Mutex<HashSet<String>>>;

fn in_flight_len(in_flight: &InFlight) -> usize {
    in_flight.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Fetches from the source and sends each new email to processing, until `stop` or until
/// processing ends. A source read in batches is fetched again only when its batch
/// is settled; the others are fetched again after each wait, while earlier mail is read.
async fn feed(
    source: &Source,
    store: &Store,
    in_flight: &InFlight,
    settled_batch: &Notify,
    tx: mpsc::Sender<Input>,
    mut stop: watch::Receiver<bool>,
) {
    while !is_stopped(&stop) {
        if source.reads_batches() {
            while in_flight_len(in_flight) > 0 {
                tokio::select! {
                    _ = settled_batch.notified() => {}
                    _ = wait_stop(&mut stop) => return,
                }
            }
        }
        let known = in_flight.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let inputs = match source.fetch(store, &known, &mut stop).await {
            Ok(inputs) => inputs,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cannot list the Maildir");
                Vec::new()
            }
        };
        let fetched = !inputs.is_empty();
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(inputs.iter().map(|i| i.source_ref.clone()));
        for input in inputs {
            if tx.send(input).await.is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        if !fetched || !source.reads_batches() {
            source.wait(&mut stop).await;
        }
    }
}

/// How often KIV is probed while emails wait for it.
const KIV_PROBE_EVERY: Duration = Duration::from_secs(2);

/// With KIV over LDAP: while emails wait for KIV, probe it every `KIV_PROBE_EVERY`; when it
/// answers (its canary is found), every waiting email is due at once rather than at its next
/// back-off slot (up to `ldap.retry_max_ms`).
/// How often the KIV snapshot file is looked at for a change.
const SNAPSHOT_POLL: Duration = Duration::from_secs(2);

/// The embedded default's KIV snapshot follows its file (`SnapshotFile::poll`).
fn start_snapshot_watch(intake: &Arc<Intake>) -> Option<tokio::task::JoinHandle<()>> {
    if !matches!(intake.directory(), crate::directory::Directory::Snapshot(_)) {
        return None;
    }
    let intake = Arc::clone(intake);
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(SNAPSHOT_POLL).await;
            let intake = Arc::clone(&intake);
            let _ = tokio::task::spawn_blocking(move || {
                if let crate::directory::Directory::Snapshot(file) = intake.directory() {
                    file.poll();
                }
            })
            .await;
        }
    }))
}

fn start_kiv_prober(intake: &Arc<Intake>, store: &Store) -> Option<tokio::task::JoinHandle<()>> {
    if !matches!(intake.directory(), crate::directory::Directory::Ldap(_)) {
        return None;
    }
    let intake = Arc::clone(intake);
    let store = store.clone();
    Some(tokio::spawn(async move {
        let crate::directory::Directory::Ldap(ldap) = intake.directory() else {
            return;
        };
        loop {
            tokio::time::sleep(KIV_PROBE_EVERY).await;
            let now = chrono::Utc::now().timestamp_millis();
            let waiting = match store.waiting_not_due(now).await {
                Ok(w) => w.len(),
                Err(_) => continue,
            };
            if waiting == 0 || ldap.probe().await.is_err() {
                continue;
            }
            match store
                .waiting_due_now(chrono::Utc::now().timestamp_millis())
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(
                        emails = n,
                        "KIV answers again; the emails waiting for it are tried now"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot bring the emails waiting for KIV forward")
                }
            }
        }
    }))
}

/// How often the store is asked whether it answers, and how long it may take.
const STORE_WATCH_EVERY: Duration = Duration::from_secs(2);

/// Watches the store with a trivial query every `STORE_WATCH_EVERY`, so that an outage is a
/// WARN line within seconds, and its end another with how long it lasted (telemetry's
/// component states; `tjid_store_up`), whatever else the daemon is doing meanwhile.
fn start_store_watch(store: &Store) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    tokio::spawn(async move {
        loop {
            let answer = tokio::time::timeout(STORE_WATCH_EVERY, store.server_version()).await;
            let problem = match answer {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!(
                    "no answer within {} s",
                    STORE_WATCH_EVERY.as_secs()
                )),
            };
            let component = crate::telemetry::Component::Store;
            crate::telemetry::component_seen(component, problem.is_none());
            if let Some(why) = problem {
                crate::telemetry::component_problem(component, &why);
            }
            tokio::time::sleep(STORE_WATCH_EVERY).await;
        }
    })
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
    let originals = settings.originals();
    let settings = settings.clone();
    Some(tokio::spawn(async move {
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) =
                crate::casework::retention::purge(&store, &retention, Some(&originals), now).await
            {
                tracing::error!(error = %e, "retention purge failed; will try again tomorrow");
            }
            if let Err(e) =
                crate::casework::retention::erase_on_server(&store, settings.imap_source(), now)
                    .await
            {
                tracing::error!(error = %e, "retention on the IMAP server failed; will try again tomorrow");
            }
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        }
    }))
}

/// SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
