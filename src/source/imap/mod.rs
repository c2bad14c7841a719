//! The IMAP source (async-imap on tokio): reads the office mailbox, hands new messages to the
//! engine in UID order, and acknowledges each at the server (MOVE to a folder, or a flag) only
//! after its outcome is committed. The store remembers UIDVALIDITY and the last UID per
//! mailbox, so a restart continues where it stopped and never downloads the folder again.
//!
//! Every command is bounded by a time-out; a lost or hung connection ends the session, and the
//! source reconnects with exponential back-off and jitter. A message committed but not yet
//! acknowledged when the connection dropped is recognised by its `imap:<validity>:<uid>` source
//! reference and only acknowledged.
//!
//! `connect` opens and authenticates a session, `session` keeps it (folders, position,
//! reconnecting with back-off), `fetch` reads a batch, `acknowledge` moves or flags what was
//! committed, `wait` is IDLE or polling, `erase` is retention on the server, `utf7` the
//! folder names and `status` the connection state for ops.

mod acknowledge;
mod connect;
mod erase;
mod fetch;
mod session;
mod settings;
mod status;
mod utf7;
mod wait;

pub use connect::{ImapSession, Io};
pub use settings::{AfterAction, ImapAuth, ImapSettings};
pub use status::{ConnectionState, ConnectionStatus};
pub use utf7::encode_folder_name;

use std::time::Duration;

use tokio::sync::watch;

use super::{is_stopped, wait_stop};
use super::{Ack, Input};
use crate::case::EmailOutcome;
use crate::store::{ImapPosition, Store};
use session::Reconnect;
use wait::has_news;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to IMAP server {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("cannot set up TLS with IMAP server {endpoint}: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("IMAP server {endpoint} sent no greeting")]
    Greeting { endpoint: String },
    #[error("cannot start TLS with IMAP server {endpoint}: {reason}")]
    Starttls { endpoint: String, reason: String },
    #[error("cannot log in to IMAP server {endpoint} as the configured user: {reason}")]
    Login { endpoint: String, reason: String },
    #[error("cannot get the OAuth2 token: {0}")]
    Token(String),
    #[error("cannot read the IMAP password file {path}: {source}")]
    Password {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot select the IMAP folder {folder:?}: {reason}")]
    Select { folder: String, reason: String },
    #[error("IMAP server did not report a UIDVALIDITY for {folder:?}")]
    NoUidValidity { folder: String },
    #[error("IMAP command {command} failed: {source}")]
    Command {
        command: &'static str,
        source: async_imap::error::Error,
    },
    #[error("IMAP command {command} did not finish within {secs} s")]
    Timeout { command: &'static str, secs: u64 },
    #[error("cannot record a message from IMAP: {0}")]
    Record(crate::store::StoreError),
}

/// The features of the server that change how the source works.
#[derive(Debug, Clone, Copy, Default)]
struct ServerFeatures {
    idle: bool,
    r#move: bool,
    uidplus: bool,
}

pub struct ImapSource {
    settings: ImapSettings,
    max_message_bytes: usize,
    endpoint: String,
    /// The key of this mailbox in the store.
    mailbox: String,
    status: ConnectionStatus,
    /// The session of the running source; `None` before connecting and after a failure.
    conn: tokio::sync::Mutex<Option<Conn>>,
    reconnect: std::sync::Mutex<Reconnect>,
}

/// A connected session with its folder selected.
struct Conn {
    session: ImapSession,
    features: ServerFeatures,
    position: ImapPosition,
    /// The batch handed out and not yet acknowledged.
    batch: Option<Batch>,
    polling_logged: bool,
}

/// The batch handed out: the position moves to its last UID once all its messages are settled.
struct Batch {
    max_uid: u32,
}

impl ImapSource {
    pub fn new(
        settings: &ImapSettings,
        max_message_bytes: usize,
        status: ConnectionStatus,
    ) -> ImapSource {
        let endpoint = format!("{}:{}", settings.host, settings.port());
        ImapSource {
            mailbox: format!("{}@{}/{}", settings.username, endpoint, settings.folder),
            settings: settings.clone(),
            max_message_bytes: settings.max_message_bytes.unwrap_or(max_message_bytes),
            endpoint,
            status,
            conn: tokio::sync::Mutex::new(None),
            reconnect: std::sync::Mutex::new(Reconnect::default()),
        }
    }

    pub fn status(&self) -> ConnectionStatus {
        self.status.clone()
    }

    /// Bounds one command by the configured time-out.
    async fn bounded<T, F>(&self, command: &'static str, fut: F) -> Result<T, ImapError>
    where
        F: std::future::Future<Output = async_imap::error::Result<T>>,
    {
        let secs = self.settings.command_timeout_secs;
        match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(ImapError::Command { command, source }),
            Err(_) => Err(ImapError::Timeout { command, secs }),
        }
    }

    /// One batch of new messages, connecting first when there is no session (after a failure,
    /// with exponential back-off). Messages committed before a crash or a lost connection and
    /// messages above the size limit (recorded here from their header) are not handed out but
    /// acknowledged at once; when a batch holds only such messages, it is closed and the next
    /// one fetched. Empty: the folder is caught up, or the daemon is stopping.
    pub async fn fetch(&self, store: &Store, stop: &mut watch::Receiver<bool>) -> Vec<Input> {
        let mut conn = self.conn.lock().await;
        loop {
            if is_stopped(stop) {
                return Vec::new();
            }
            let Some(c) = conn.as_mut() else {
                *conn = self.connect_with_back_off(store, stop).await;
                continue;
            };
            // The channel is bounded and fills silently; we look at the folder anyway.
            has_news(&c.session.unsolicited_responses);
            let result = match self.fetch_round(c, store).await {
                Ok(inputs) if inputs.is_empty() && c.batch.is_some() => {
                    // Nothing to read in this batch: close it and go on with the next.
                    self.finish_batch(c, store).await.map(|()| None)
                }
                Ok(inputs) => Ok(Some(inputs)),
                Err(e) => Err(e),
            };
            match result {
                Ok(Some(inputs)) => return inputs,
                Ok(None) => {}
                // Any failure, the store's too, ends the session: the source reconnects and
                // continues from the last position it recorded.
                Err(e) => self.lost(&mut conn, e),
            }
        }
    }

    /// Moves or flags messages of the batch [`Self::fetch`] handed out, as soon as their
    /// outcome is committed. A failure is not returned: the session is dropped, and the
    /// messages, recorded already, are acknowledged after reconnecting.
    pub async fn acknowledge(&self, acks: &[Ack]) {
        let mut conn = self.conn.lock().await;
        let Some(c) = conn.as_mut() else {
            return;
        };
        let acks: Vec<(u32, EmailOutcome)> = acks
            .iter()
            .filter_map(|a| Some((uid_of(&a.source_ref)?, a.outcome)))
            .collect();
        if let Err(e) = self
            .acknowledge_uids(&mut c.session, c.features, &acks)
            .await
        {
            self.lost(&mut conn, e);
        }
    }

    /// Closes the batch [`Self::fetch`] handed out, once all its messages are settled: the
    /// folder's position moves to its last UID. On a failure the session is dropped, and the
    /// batch is read again after reconnecting (its recorded messages are only acknowledged).
    pub async fn batch_settled(&self, store: &Store) {
        let mut conn = self.conn.lock().await;
        let Some(c) = conn.as_mut() else {
            return;
        };
        if let Err(e) = self.finish_batch(c, store).await {
            self.lost(&mut conn, e);
        }
    }

    /// Logs out (the daemon stops).
    pub async fn close(&self) {
        if let Some(mut c) = self.conn.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.session.logout()).await;
        }
        self.status.set(ConnectionState::Stopped);
        tracing::info!("IMAP source stopped");
    }
}

pub fn source_ref(uid_validity: u32, uid: u32) -> String {
    format!("imap:{uid_validity}:{uid}")
}

fn uid_of(source_ref: &str) -> Option<u32> {
    source_ref
        .strip_prefix("imap:")?
        .split(':')
        .nth(1)?
        .parse()
        .ok()
}

/// `1:3,7,9:10` from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact_and_source_refs_round_trip() {
        assert_eq!(uid_set(&[9, 1, 2, 3, 7, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_of(&source_ref(77, 4012)), Some(4012));
        assert_eq!(uid_of("maildir:x"), None);
    }
}
