//! Several instances on one mailbox: only the holder of the folder's lease in the store reads
//! the IMAP folder. The others wait, polling the lease, and take it over once it has run out
//! (its holder stopped renewing: it died, kill -9 included, or lost the database). The holder
//! renews every `lease_secs / 3` and stops fetching as soon as a renewal fails or its lease
//! would run out before the next try. What it had read and not yet settled is finished or
//! dropped; recording is idempotent by source reference (and Message-ID), so the next holder
//! reading the same messages again only acknowledges them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{is_stopped, wait_stop};
use super::{ImapSettings, InstanceSettings};
use crate::store::Store;

/// The lease's name for the configured folder: `imap:<host>:<user>:<folder>`.
pub fn lease_name(i: &ImapSettings) -> String {
    format!("imap:{}:{}:{}", i.host, i.username, i.folder)
}

/// Whether this instance holds the folder's lease (for `/metrics` and `/readyz`).
#[derive(Debug, Clone)]
pub struct LeaseStatus {
    pub name: String,
    pub instance: String,
    held: Arc<AtomicBool>,
}

impl LeaseStatus {
    pub fn new(imap: &ImapSettings, instance: &InstanceSettings) -> LeaseStatus {
        let status = LeaseStatus {
            name: lease_name(imap),
            instance: instance.name.clone(),
            held: Arc::default(),
        };
        status.set(false);
        status
    }

    /// Sets the gauge to the current state (once the metrics recorder is installed, so that
    /// the gauge is there from the start).
    pub fn publish(&self) {
        crate::telemetry::set_imap_lease_held(&self.instance, self.held());
    }

    pub fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    fn set(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
        crate::telemetry::set_imap_lease_held(&self.instance, held);
    }
}

/// The lease on the folder, as this instance takes, keeps and gives it up.
pub struct MailboxLease {
    store: Store,
    status: LeaseStatus,
    ttl: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl MailboxLease {
    pub fn new(store: Store, imap: &ImapSettings, status: LeaseStatus) -> MailboxLease {
        MailboxLease {
            store,
            status,
            ttl: Duration::from_secs(imap.lease_secs),
        }
    }

    fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis() as i64
    }

    /// How often the holder renews, and how often the others look whether it has run out.
    fn period(&self) -> Duration {
        (self.ttl / 3).min(Duration::from_secs(5))
    }

    /// Runs `read` (the driver) whenever this instance holds the lease, until `stop`. `read`
    /// gets a stop signal that is set when the lease is lost (or the daemon stops), and must
    /// return then. The lease is given up at a clean stop.
    pub async fn read_while_held<F, Fut>(
        &self,
        mut stop: watch::Receiver<bool>,
        mut read: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut waiting_logged = false;
        loop {
            if is_stopped(&stop) {
                return Ok(());
            }
            match self
                .store
                .try_take_lease(
                    &self.status.name,
                    &self.status.instance,
                    self.ttl_ms(),
                    now_ms(),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    if !waiting_logged {
                        let holder = self
                            .store
                            .lease_state(&self.status.name)
                            .await
                            .ok()
                            .flatten();
                        tracing::info!(
                            holder = holder.as_ref().map(|l| l.holder.as_str()).unwrap_or("?"),
                            "another instance reads the IMAP folder; waiting for its lease"
                        );
                        waiting_logged = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.period()) => {}
                        _ = wait_stop(&mut stop) => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the IMAP lease; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(self.period()) => {}
                        _ = wait_stop(&mut stop) => {}
                    }
                    continue;
                }
            }
            waiting_logged = false;
            self.status.set(true);
            tracing::info!("holding the IMAP lease: reading the folder");
            let (held_tx, held_rx) = watch::channel(false);
            let keeper = tokio::spawn(keep(
                self.store.clone(),
                self.status.clone(),
                self.ttl,
                self.period(),
                stop.clone(),
                held_tx,
            ));
            let result = read(held_rx).await;
            keeper.abort();
            self.status.set(false);
            if is_stopped(&stop) {
                match self
                    .store
                    .release_lease(&self.status.name, &self.status.instance)
                    .await
                {
                    Ok(_) => tracing::info!("IMAP lease released"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot release the IMAP lease; it runs out")
                    }
                }
                return result;
            }
            if let Err(e) = result {
                tracing::error!(error = format!("{e:#}"), "reading stopped");
            }
            tracing::warn!("IMAP lease lost: stopped reading; waiting to take it again");
        }
    }
}

/// Renews the lease every `period` while held. Sets `lost` (which stops the reading) when a
/// renewal says the lease is gone, when the database does not answer until the lease would
/// run out before the next try, or when the daemon stops.
async fn keep(
    store: Store,
    status: LeaseStatus,
    ttl: Duration,
    period: Duration,
    mut stop: watch::Receiver<bool>,
    lost: watch::Sender<bool>,
) {
    let ttl_ms = ttl.as_millis() as i64;
    let mut expires_at = now_ms() + ttl_ms;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = wait_stop(&mut stop) => {
                let _ = lost.send(true);
                return;
            }
        }
        let now = now_ms();
        // A database that hangs counts as one that fails; the lease is lost when it runs out.
        let left = Duration::from_millis((expires_at - now).max(1) as u64);
        let renewed = tokio::time::timeout(
            left,
            store.renew_lease(&status.name, &status.instance, ttl_ms, now),
        )
        .await
        .unwrap_or_else(|_| Err(crate::store::StoreError::Query(sqlx::Error::PoolTimedOut)));
        match renewed {
            Ok(true) => expires_at = now + ttl_ms,
            Ok(false) => {
                tracing::warn!("the IMAP lease ran out or was taken over");
                let _ = lost.send(true);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the IMAP lease");
                // Stop reading before the lease runs out: another may take it then.
                if now_ms() + period.as_millis() as i64 >= expires_at {
                    let _ = lost.send(true);
                    return;
                }
            }
        }
    }
}
