//! Telling systemd how the daemon stands (`Type=notify`, packaging/tjid-intake.service):
//! `READY=1` once `run` serves and reads mail, `WATCHDOG=1` at half the unit's `WatchdogSec`
//! while the async runtime still runs its tasks (what `/healthz` tells a load balancer), and
//! `STOPPING=1` when it stops. Outside systemd (no `NOTIFY_SOCKET`) each call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Start-up is done: the ops endpoint listens and mail is being read.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("reading mail")]);
}

/// The daemon is stopping (the outbox's last round may still take a while).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pings systemd's watchdog from a task on the runtime, when the unit asks for one
/// (`WatchdogSec`): a runtime that no longer runs its tasks stops the pings, and systemd
/// restarts the daemon. The email's own work runs on blocking threads and OCR workers, so a long
/// scan does not hold the pings up. The task ends with the runtime.
pub fn start_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let every = sd_notify::watchdog_enabled()? / 2;
    let every = every.max(Duration::from_millis(100));
    tracing::info!(
        every_ms = every.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}
