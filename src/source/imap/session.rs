//! Keeping a session: opening it (capabilities, folders, the selected folder and where to
//! continue), dropping it on failure, and reconnecting with back-off.

use std::time::Duration;

use tokio::sync::watch;

use super::wait_stop;
use super::{encode_folder_name, ConnectionState};
use super::{AfterAction, ImapSettings};
use super::{Conn, ImapError, ImapSession, ImapSource, ServerFeatures};
use crate::store::{ImapPosition, Store};

/// The wait before the next attempt after `failures` failed ones: the shared back-off with
/// ±50 % jitter, so that many daemons do not reconnect in step.
fn reconnect_delay(s: &ImapSettings, failures: u32) -> Duration {
    crate::clock::jittered(crate::clock::backoff_ms(
        s.reconnect_initial_ms,
        s.reconnect_max_secs.saturating_mul(1000),
        failures.into(),
    ))
}

/// How reconnecting went so far: each distinct failure is logged once, not per attempt.
#[derive(Default)]
pub(super) struct Reconnect {
    failures: u32,
    last_error: Option<String>,
}

impl ImapSource {
    /// The session failed: drop it; the next fetch reconnects after the back-off.
    pub(super) fn lost(&self, conn: &mut Option<Conn>, e: ImapError) {
        *conn = None;
        self.status.set(ConnectionState::Reconnecting);
        let mut reconnect = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        reconnect.failures = reconnect.failures.saturating_add(1);
        let message = e.to_string();
        crate::telemetry::component_problem(crate::telemetry::Component::Mailbox, &message);
        crate::telemetry::component_seen(crate::telemetry::Component::Mailbox, false);
        if reconnect.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "IMAP session lost; reconnecting with back-off");
            reconnect.last_error = Some(message);
        } else {
            tracing::debug!(error = %message, attempt = reconnect.failures, "IMAP still unreachable");
        }
    }

    /// Connects after waiting the back-off of the failures so far; `None` if that failed too
    /// (counted for the back-off) or the daemon is stopping.
    pub(super) async fn connect_with_back_off(
        &self,
        store: &Store,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Conn> {
        let failures = self
            .reconnect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures;
        if failures > 0 {
            let delay = reconnect_delay(&self.settings, failures - 1);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wait_stop(stop) => return None,
            }
        }
        if self.status.set(ConnectionState::Connecting) && failures == 0 {
            tracing::info!(server = %self.endpoint, "connecting to the IMAP server");
        }
        let mut conn = None;
        match self.open(store).await {
            Ok(c) => conn = Some(c),
            Err(e) => self.lost(&mut conn, e),
        }
        conn
    }

    /// Connects, selects the folder and works out where to continue.
    pub(super) async fn open(&self, store: &Store) -> Result<Conn, ImapError> {
        let mut session = self.connect().await?;
        let features = {
            let caps = self.bounded("CAPABILITY", session.capabilities()).await?;
            ServerFeatures {
                idle: caps.has_str("IDLE"),
                r#move: caps.has_str("MOVE"),
                uidplus: caps.has_str("UIDPLUS"),
            }
        };
        if self.settings.create_folders {
            self.create_folders(&mut session).await?;
        }
        let position = self.select(&mut session, store).await?;
        crate::telemetry::component_seen(crate::telemetry::Component::Mailbox, true);
        let mut reconnect = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        if self.status.set(ConnectionState::Connected) {
            if reconnect.failures > 0 {
                tracing::info!(attempts = reconnect.failures, "IMAP connection restored");
            }
            tracing::info!(
                server = %self.endpoint,
                idle = features.idle && self.settings.idle,
                r#move = features.r#move,
                last_uid = position.last_uid,
                "IMAP connected; folder selected"
            );
        }
        *reconnect = Reconnect::default();
        Ok(Conn {
            session,
            features,
            position,
            batch: None,
            polling_logged: false,
        })
    }

    pub(super) async fn create_folders(&self, session: &mut ImapSession) -> Result<(), ImapError> {
        let s = &self.settings;
        let mut folders: Vec<&str> = [&s.processed, &s.ignored, &s.quarantined]
            .into_iter()
            .filter_map(|a| match a {
                AfterAction::Move(f) => Some(f.as_str()),
                AfterAction::Flag(_) => None,
            })
            .collect();
        folders.sort_unstable();
        folders.dedup();
        for folder in folders {
            // NO means "already exists" on every server we know; other failures show on MOVE.
            match self
                .bounded("CREATE", session.create(encode_folder_name(folder)))
                .await
            {
                Ok(())
                | Err(ImapError::Command {
                    source: async_imap::error::Error::No(_),
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Selects the folder and works out where to continue.
    pub(super) async fn select(
        &self,
        session: &mut ImapSession,
        store: &Store,
    ) -> Result<ImapPosition, ImapError> {
        let folder = &self.settings.folder;
        let secs = self.settings.command_timeout_secs;
        let mailbox = match tokio::time::timeout(
            Duration::from_secs(secs),
            session.select(encode_folder_name(folder)),
        )
        .await
        {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return Err(ImapError::Select {
                    folder: folder.clone(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ImapError::Timeout {
                    command: "SELECT",
                    secs,
                })
            }
        };
        let validity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity {
                folder: folder.clone(),
            })?;
        let stored = store
            .imap_position(&self.mailbox)
            .await
            .map_err(ImapError::Record)?;
        Ok(match stored {
            Some(p) if p.uid_validity == validity => p,
            Some(p) => {
                tracing::warn!(
                    old = p.uid_validity,
                    new = validity,
                    "UIDVALIDITY changed: re-scanning the folder (Message-ID deduplication prevents double answers)"
                );
                ImapPosition {
                    uid_validity: validity,
                    last_uid: 0,
                }
            }
            None => ImapPosition {
                uid_validity: validity,
                last_uid: 0,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_is_capped_and_jittered() {
        let s = ImapSettings {
            reconnect_initial_ms: 1000,
            reconnect_max_secs: 8,
            ..ImapSettings::default()
        };
        for _ in 0..50 {
            let d0 = reconnect_delay(&s, 0).as_millis();
            assert!((500..=1500).contains(&d0), "{d0}");
            let d10 = reconnect_delay(&s, 10).as_millis();
            assert!((4000..=12000).contains(&d10), "{d10}");
        }
    }
}
