//! The IMAP source (async-imap on tokio): reads the office mailbox, hands new messages to the
//! engine in UID order, and acknowledges each at the server (MOVE to a folder, or a flag) only
//! after its outcome is committed. The store remembers UIDVALIDITY and the last UID per
//! mailbox, so a restart continues where it stopped and never downloads the folder again.
//!
//! Every command is bounded by a time-out; a lost or hung connection ends the session, and the
//! source reconnects with exponential back-off and jitter. A message committed but not yet
//! acknowledged when the connection dropped is recognised by its `imap:<validity>:<uid>` source
//! reference and only acknowledged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use async_imap::{Authenticator, Client, Session};
use base64::Engine;
use chrono::Utc;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{is_stopped, wait_stop};
use super::{Ack, Input};
use crate::case::EmailOutcome;
use crate::config::{AfterAction, ImapAuth, ImapSettings, Security};
use crate::store::{ImapPosition, MailRecord, Store};

/// Anything a session can run over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

pub type ImapSession = Session<Box<dyn Io>>;

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

/// The IMAP connection as ops see it (the metrics export it as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnectionState {
    /// Not started, or stopped.
    Stopped = 0,
    Connecting = 1,
    /// Logged in and the folder selected (fetching, or waiting with IDLE or polling).
    Connected = 2,
    /// The last attempt failed; waiting before the next one.
    Reconnecting = 3,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Stopped => "stopped",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
        }
    }

    fn from_u8(v: u8) -> ConnectionState {
        match v {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::Connected,
            3 => ConnectionState::Reconnecting,
            _ => ConnectionState::Stopped,
        }
    }
}

/// Shared, cheap to read: the daemon sets it, `/metrics` reads it.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStatus(Arc<AtomicU8>);

impl ConnectionStatus {
    pub fn get(&self) -> ConnectionState {
        ConnectionState::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Sets the state; returns whether it changed (so that each change is logged once).
    fn set(&self, state: ConnectionState) -> bool {
        crate::telemetry::set_imap_connected(state == ConnectionState::Connected);
        self.0.swap(state as u8, Ordering::Relaxed) != state as u8
    }
}

/// Encodes a folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): `Åtgärdat` →
/// `&AMU-tg&AOQ-rdat`.
pub fn encode_folder_name(name: &str) -> String {
    fn flush(out: &mut String, pending: &mut Vec<u16>) {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(bytes)
            .replace('/', ",");
        out.push('&');
        out.push_str(&b64);
        out.push('-');
        pending.clear();
    }
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

struct PlainAuth {
    user: String,
    password: String,
}

impl Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password).into_bytes()
    }
}

/// SASL XOAUTH2 (Google, Microsoft 365). On failure the server sends a JSON challenge and
/// expects an empty answer before it says NO.
struct XOAuth2 {
    user: String,
    token: String,
    sent: bool,
}

impl Authenticator for XOAuth2 {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        if std::mem::replace(&mut self.sent, true) {
            return Vec::new();
        }
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
    }
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

/// One batch of UIDs: its last UID, and the acknowledgements it decided by itself (messages
/// recorded before, and oversized ones).
struct Batch {
    max_uid: u32,
    acks: Vec<(u32, EmailOutcome)>,
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

    /// Connects, protects and authenticates a session (no folder selected yet).
    pub async fn connect(&self) -> Result<ImapSession, ImapError> {
        let s = &self.settings;
        let endpoint = self.endpoint.clone();
        let connect_timeout = Duration::from_secs(s.connect_timeout_secs);
        let command_timeout = Duration::from_secs(s.command_timeout_secs);
        let tcp = match tokio::time::timeout(
            connect_timeout,
            TcpStream::connect((s.host.as_str(), s.port())),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(source)) => return Err(ImapError::Connect { endpoint, source }),
            Err(_) => {
                return Err(ImapError::Connect {
                    endpoint,
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = |tcp: TcpStream| {
            let endpoint = endpoint.clone();
            async move {
                let config =
                    crate::net::tls::client_config(s.ca_file.as_deref()).map_err(|reason| {
                        ImapError::Tls {
                            endpoint: endpoint.clone(),
                            reason,
                        }
                    })?;
                let name =
                    rustls::pki_types::ServerName::try_from(s.host.clone()).map_err(|e| {
                        ImapError::Tls {
                            endpoint: endpoint.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                let connector = tokio_rustls::TlsConnector::from(config);
                match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await {
                    Ok(Ok(stream)) => Ok(stream),
                    Ok(Err(e)) => Err(ImapError::Tls {
                        endpoint,
                        reason: crate::net::tls::explain_refusal(
                            e.to_string(),
                            &e,
                            s.ca_file.as_deref(),
                            "imap.ca_file",
                        ),
                    }),
                    Err(_) => Err(ImapError::Tls {
                        endpoint,
                        reason: "TLS handshake timed out".into(),
                    }),
                }
            }
        };
        let client: Client<Box<dyn Io>> = match s.security {
            Security::Tls => {
                let mut client: Client<Box<dyn Io>> = Client::new(Box::new(tls(tcp).await?));
                read_greeting(&mut client, command_timeout, &endpoint).await?;
                client
            }
            Security::Plain => {
                let mut client: Client<Box<dyn Io>> = Client::new(Box::new(tcp));
                read_greeting(&mut client, command_timeout, &endpoint).await?;
                client
            }
            Security::Starttls => {
                let mut plain = Client::new(tcp);
                read_greeting(&mut plain, command_timeout, &endpoint).await?;
                match tokio::time::timeout(
                    command_timeout,
                    plain.run_command_and_check_ok("STARTTLS", None),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(ImapError::Starttls {
                            endpoint,
                            reason: e.to_string(),
                        })
                    }
                    Err(_) => {
                        return Err(ImapError::Starttls {
                            endpoint,
                            reason: "timed out".into(),
                        })
                    }
                }
                // No second greeting after STARTTLS: the session simply continues.
                Client::new(Box::new(tls(plain.into_inner()).await?))
            }
        };
        self.authenticate(client).await
    }

    async fn authenticate(&self, client: Client<Box<dyn Io>>) -> Result<ImapSession, ImapError> {
        let s = &self.settings;
        let timeout = Duration::from_secs(s.command_timeout_secs);
        let login_error = |reason: String| ImapError::Login {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let password = || -> Result<String, ImapError> {
            match (&s.password, &s.password_file) {
                (Some(p), _) => Ok(p.clone()),
                (None, Some(path)) => {
                    read_secret_file(path).map_err(|source| ImapError::Password {
                        path: path.display().to_string(),
                        source,
                    })
                }
                (None, None) => Ok(String::new()),
            }
        };
        let result = match s.auth {
            ImapAuth::Login => {
                let password = password()?;
                tokio::time::timeout(timeout, client.login(&s.username, &password)).await
            }
            ImapAuth::Plain => {
                let auth = PlainAuth {
                    user: s.username.clone(),
                    password: password()?,
                };
                tokio::time::timeout(timeout, client.authenticate("PLAIN", auth)).await
            }
            ImapAuth::Xoauth2 => {
                let token = oauth_token(s).await?;
                let auth = XOAuth2 {
                    user: s.username.clone(),
                    token,
                    sent: false,
                };
                tokio::time::timeout(timeout, client.authenticate("XOAUTH2", auth)).await
            }
        };
        match result {
            Ok(Ok(session)) => Ok(session),
            // Only the server's words: the password and token never appear in errors.
            Ok(Err((e, _client))) => Err(login_error(e.to_string())),
            Err(_) => Err(login_error("timed out".into())),
        }
    }
}

fn read_secret_file(path: &std::path::Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?
        .trim_end_matches(['\r', '\n'])
        .to_string())
}

/// A fresh access token: read from the file each time (a helper keeps it fresh), or printed by
/// the configured command.
async fn oauth_token(s: &ImapSettings) -> Result<String, ImapError> {
    if let Some(path) = &s.oauth_token_file {
        return read_secret_file(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| ImapError::Token(format!("cannot read {}: {e}", path.display())));
    }
    let Some(command) = &s.oauth_token_command else {
        return Err(ImapError::Token(
            "neither oauth_token_file nor oauth_token_command is set".into(),
        ));
    };
    let run = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(s.command_timeout_secs), run)
        .await
        .map_err(|_| ImapError::Token("the token command did not finish in time".into()))?
        .map_err(|e| ImapError::Token(format!("cannot run the token command: {e}")))?;
    if !output.status.success() {
        return Err(ImapError::Token(format!(
            "the token command failed ({})",
            output.status
        )));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if token.is_empty() {
        return Err(ImapError::Token("the token command printed nothing".into()));
    }
    Ok(token)
}

async fn read_greeting<T>(
    client: &mut Client<T>,
    timeout: Duration,
    endpoint: &str,
) -> Result<(), ImapError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug,
{
    match tokio::time::timeout(timeout, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        _ => Err(ImapError::Greeting {
            endpoint: endpoint.to_string(),
        }),
    }
}

/// Whether the daemon is stopping (the sender said so, or is gone).
/// Exponential back-off with ±50 % jitter, so that many daemons do not reconnect in step.
fn reconnect_delay(s: &ImapSettings, failures: u32) -> Duration {
    let base = s
        .reconnect_initial_ms
        .saturating_mul(1u64 << failures.min(20))
        .min(s.reconnect_max_secs * 1000);
    let jitter = fastrand::f64() + 0.5;
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// How reconnecting went so far: each distinct failure is logged once, not per attempt.
#[derive(Default)]
struct Reconnect {
    failures: u32,
    last_error: Option<String>,
}

impl ImapSource {
    fn keywords(&self) -> Vec<String> {
        let s = &self.settings;
        [&s.processed, &s.ignored, &s.quarantined]
            .into_iter()
            .filter_map(|a| match a {
                AfterAction::Flag(k) => Some(k.clone()),
                AfterAction::Move(_) => None,
            })
            .collect()
    }

    fn action(&self, ack: EmailOutcome) -> &AfterAction {
        match ack {
            EmailOutcome::Processed => &self.settings.processed,
            EmailOutcome::Ignored => &self.settings.ignored,
            EmailOutcome::Quarantined => &self.settings.quarantined,
        }
    }

    /// One batch of new messages, connecting first when there is no session (after a failure,
    /// with exponential back-off). Messages committed before a crash or a lost connection and
    /// messages above the size limit (recorded here from their header) are not handed out:
    /// they wait in the batch for [`Self::acknowledge`]. A batch of only such messages is
    /// acknowledged at once and the next one fetched. Empty: the folder is caught up, or the
    /// daemon is stopping.
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
                    // Nothing to read in this batch: acknowledge it and go on with the next.
                    self.finish_batch(c, store, &[]).await.map(|()| None)
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

    /// Acknowledges the batch [`Self::fetch`] handed out, once all its messages are settled:
    /// moves or flags the recorded ones (and those the batch acknowledged by itself), then
    /// remembers the batch's last UID. A failure is not returned: the session is dropped, and
    /// the messages, recorded already, are only acknowledged after reconnecting.
    pub async fn acknowledge(&self, store: &Store, acks: &[Ack]) {
        let mut conn = self.conn.lock().await;
        let Some(c) = conn.as_mut() else {
            return;
        };
        let acks: Vec<(u32, EmailOutcome)> = acks
            .iter()
            .filter_map(|a| Some((uid_of(&a.source_ref)?, a.outcome)))
            .collect();
        if let Err(e) = self.finish_batch(c, store, &acks).await {
            self.lost(&mut conn, e);
        }
    }

    /// Waits for new mail: IDLE when the server has it (and it is on), else the poll interval.
    pub async fn wait(&self, stop: &mut watch::Receiver<bool>) {
        let mut conn = self.conn.lock().await;
        let Some(mut c) = conn.take() else {
            return;
        };
        // Mail that arrived while we fetched or moved was announced then: look again before
        // waiting, or it would wait for the next event.
        if has_news(&c.session.unsolicited_responses) {
            *conn = Some(c);
            return;
        }
        let waited = if c.features.idle && self.settings.idle {
            match self.idle(c.session, stop).await {
                Ok(session) => Ok(Conn { session, ..c }),
                Err(e) => Err(e),
            }
        } else {
            if !c.polling_logged {
                tracing::info!(
                    interval_s = self.settings.poll_interval_secs,
                    "IMAP server without IDLE (or IDLE off): polling"
                );
                c.polling_logged = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.settings.poll_interval_secs)) => {}
                _ = wait_stop(stop) => {}
            }
            match self.bounded("NOOP", c.session.noop()).await {
                Ok(()) => Ok(c),
                Err(e) => Err(e),
            }
        };
        match waited {
            Ok(c) => *conn = Some(c),
            Err(e) => self.lost(&mut conn, e),
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

    /// The session failed: drop it; the next fetch reconnects after the back-off.
    fn lost(&self, conn: &mut Option<Conn>, e: ImapError) {
        *conn = None;
        self.status.set(ConnectionState::Reconnecting);
        let mut reconnect = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        reconnect.failures = reconnect.failures.saturating_add(1);
        let message = e.to_string();
        if reconnect.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "IMAP session lost; reconnecting with back-off");
            reconnect.last_error = Some(message);
        } else {
            tracing::debug!(error = %message, attempt = reconnect.failures, "IMAP still unreachable");
        }
    }

    /// Connects after waiting the back-off of the failures so far; `None` if that failed too
    /// (counted for the back-off) or the daemon is stopping.
    async fn connect_with_back_off(
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
    async fn open(&self, store: &Store) -> Result<Conn, ImapError> {
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

    async fn create_folders(&self, session: &mut ImapSession) -> Result<(), ImapError> {
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
    async fn select(
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

    /// Fetches at most one batch of new messages and opens it in `c.batch` (left `None` when
    /// the folder is caught up). Returns the messages to read.
    async fn fetch_round(&self, c: &mut Conn, store: &Store) -> Result<Vec<Input>, ImapError> {
        let Conn {
            session, position, ..
        } = c;
        let record_error = ImapError::Record;
        // UIDs, sizes and flags first: cheap, and lets us leave large messages on the server.
        let range = format!("{}:*", position.last_uid.saturating_add(1));
        let metas = self
            .bounded("UID FETCH", async {
                let stream = session.uid_fetch(&range, "(UID RFC822.SIZE FLAGS)").await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        let keywords = self.keywords();
        let mut new: Vec<(u32, u32, bool)> = metas
            .iter()
            .filter_map(|f| {
                let uid = f.uid?;
                // `n:*` always returns the last message, even when its UID is below n.
                if uid <= position.last_uid {
                    return None;
                }
                let done = f.flags().any(|flag| match flag {
                    async_imap::types::Flag::Custom(k) => {
                        keywords.iter().any(|w| w.eq_ignore_ascii_case(&k))
                    }
                    _ => false,
                });
                Some((uid, f.size.unwrap_or(0), done))
            })
            .collect();
        drop(metas);
        new.sort_unstable();
        new.truncate(self.settings.batch_size);
        let Some(&(max_uid, _, _)) = new.last() else {
            return Ok(Vec::new());
        };

        let wanted: Vec<u32> = new
            .iter()
            .filter(|(_, size, done)| !done && (*size as usize) <= self.max_message_bytes)
            .map(|(uid, _, _)| *uid)
            .collect();
        let oversized: Vec<u32> = new
            .iter()
            .filter(|(_, size, done)| !done && (*size as usize) > self.max_message_bytes)
            .map(|(uid, _, _)| *uid)
            .collect();

        let mut bodies: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        if !wanted.is_empty() {
            let set = uid_set(&wanted);
            let fetched = self
                .bounded("UID FETCH BODY.PEEK[]", async {
                    let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                    stream.try_collect::<Vec<_>>().await
                })
                .await?;
            for f in &fetched {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    bodies.insert(uid, body.to_vec());
                }
            }
        }

        let mut acks: Vec<(u32, EmailOutcome)> = Vec::new();
        let mut inputs = Vec::new();
        for uid in &wanted {
            let source_ref = source_ref(position.uid_validity, *uid);
            if let Some(outcome) = store
                .source_outcome(&source_ref)
                .await
                .map_err(record_error)?
            {
                // Committed before the connection (or the daemon) went down: acknowledge only.
                acks.push((
                    *uid,
                    EmailOutcome::parse(&outcome).unwrap_or(EmailOutcome::Processed),
                ));
                continue;
            }
            match bodies.remove(uid) {
                Some(raw) => inputs.push(Input {
                    display: source_ref.clone(),
                    source_ref,
                    raw,
                }),
                // Expunged by someone else between the two FETCHes: nothing to record.
                None => tracing::info!(uid = *uid, "message vanished before it could be read"),
            }
        }
        for uid in &oversized {
            self.record_oversized(session, store, position.uid_validity, *uid)
                .await?;
            acks.push((*uid, EmailOutcome::Quarantined));
        }

        c.batch = Some(Batch { max_uid, acks });
        Ok(inputs)
    }

    /// Acknowledges the open batch: its own acknowledgements and `recorded`, then its last UID.
    async fn finish_batch(
        &self,
        c: &mut Conn,
        store: &Store,
        recorded: &[(u32, EmailOutcome)],
    ) -> Result<(), ImapError> {
        let Some(mut batch) = c.batch.take() else {
            return Ok(());
        };
        batch.acks.extend_from_slice(recorded);
        self.acknowledge_uids(&mut c.session, c.features, &batch.acks)
            .await?;
        c.position.last_uid = batch.max_uid;
        store
            .set_imap_position(&self.mailbox, c.position, Utc::now().timestamp_millis())
            .await
            .map_err(ImapError::Record)?;
        Ok(())
    }

    /// A message above the size limit is not downloaded: its header is recorded, quarantined.
    async fn record_oversized(
        &self,
        session: &mut ImapSession,
        store: &Store,
        validity: u32,
        uid: u32,
    ) -> Result<(), ImapError> {
        let set = uid.to_string();
        let fetched = self
            .bounded("UID FETCH BODY.PEEK[HEADER]", async {
                let stream = session
                    .uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[HEADER])")
                    .await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        let header = fetched
            .iter()
            .find_map(|f| f.header().map(<[u8]>::to_vec))
            .unwrap_or_default();
        let size = fetched.iter().find_map(|f| f.size).unwrap_or(0);
        let parsed = crate::pipeline::parse::parse_mail(&header).ok();
        let record = MailRecord {
            source_ref: source_ref(validity, uid),
            message_id: parsed.as_ref().and_then(|m| m.message_id.clone()),
            content_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&header)),
            received_at: Utc::now().timestamp_millis(),
            email_date: parsed.as_ref().and_then(|m| m.date).map(|d| d.to_rfc3339()),
            sender: parsed.as_ref().and_then(|m| m.from.clone()),
            subject: parsed
                .as_ref()
                .map(|m| m.subject.clone())
                .unwrap_or_default(),
            headers: parsed
                .as_ref()
                .map(|m| m.raw_headers.clone())
                .unwrap_or_default(),
            ignored: None,
            error: Some(format!(
                "the message is {size} bytes, larger than {} bytes; not downloaded",
                self.max_message_bytes
            )),
            bounce: None,
        };
        let no_reply = |_: &crate::case::CheckedCase, _: &str, _: &str| None;
        store
            .record(&record, &[], &no_reply, record.received_at)
            .await
            .map_err(ImapError::Record)?;
        tracing::warn!(uid, size, "message too large; quarantined without download");
        Ok(())
    }

    /// Moves or flags the recorded messages, grouped by what their outcome asks for.
    async fn acknowledge_uids(
        &self,
        session: &mut ImapSession,
        features: ServerFeatures,
        acks: &[(u32, EmailOutcome)],
    ) -> Result<(), ImapError> {
        let mut groups: BTreeMap<(u8, String), Vec<u32>> = BTreeMap::new();
        for (uid, ack) in acks {
            let key = match self.action(*ack) {
                AfterAction::Move(folder) => (0, folder.clone()),
                AfterAction::Flag(keyword) => (1, keyword.clone()),
            };
            groups.entry(key).or_default().push(*uid);
        }
        for ((kind, target), uids) in groups {
            let set = uid_set(&uids);
            if kind == 1 {
                let query = format!("+FLAGS.SILENT (\\Seen {target})");
                self.bounded("UID STORE", async {
                    let stream = session.uid_store(&set, &query).await?;
                    stream.try_collect::<Vec<_>>().await
                })
                .await?;
                continue;
            }
            let folder = encode_folder_name(&target);
            if features.r#move {
                self.bounded("UID MOVE", session.uid_mv(&set, &folder))
                    .await?;
                continue;
            }
            self.bounded("UID COPY", session.uid_copy(&set, &folder))
                .await?;
            self.delete(session, &set, features.uidplus).await?;
        }
        Ok(())
    }

    /// Marks the messages of `set` \Deleted and expunges them.
    async fn delete(
        &self,
        session: &mut ImapSession,
        set: &str,
        uidplus: bool,
    ) -> Result<(), ImapError> {
        self.bounded("UID STORE", async {
            let stream = session.uid_store(set, "+FLAGS.SILENT (\\Deleted)").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        if uidplus {
            self.bounded("UID EXPUNGE", async {
                let stream = session.uid_expunge(set).await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        } else {
            // Without UIDPLUS only a plain EXPUNGE exists; it also removes messages others
            // marked \Deleted, which is what they asked for.
            self.bounded("EXPUNGE", async {
                let stream = session.expunge().await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        }
        Ok(())
    }

    /// Retention: removes the messages with these Message-IDs from the watched folder and from
    /// every folder mail is moved to after its outcome, so that expired personal data does not
    /// stay on the mail server. A folder that does not exist is passed over. Returns how many
    /// messages were removed.
    pub async fn erase(&self, message_ids: &[String]) -> Result<usize, ImapError> {
        if message_ids.is_empty() {
            return Ok(0);
        }
        let mut session = self.connect().await?;
        let caps = self.bounded("CAPABILITY", session.capabilities()).await?;
        let uidplus = caps.has_str("UIDPLUS");
        let s = &self.settings;
        let mut folders = vec![s.folder.clone()];
        for action in [&s.processed, &s.ignored, &s.quarantined] {
            if let AfterAction::Move(folder) = action {
                if !folders.contains(folder) {
                    folders.push(folder.clone());
                }
            }
        }
        let mut removed = 0;
        for folder in folders {
            let name = encode_folder_name(&folder);
            if self.bounded("SELECT", session.select(&name)).await.is_err() {
                continue;
            }
            let mut uids = Vec::new();
            for id in message_ids {
                // A quoted string: a Message-ID with a quote or backslash is not searched for.
                if id.contains(['"', '\\', '\r', '\n']) {
                    continue;
                }
                let query = format!("HEADER Message-ID \"{id}\"");
                uids.extend(
                    self.bounded("UID SEARCH", session.uid_search(&query))
                        .await?,
                );
            }
            if uids.is_empty() {
                continue;
            }
            uids.sort_unstable();
            uids.dedup();
            self.delete(&mut session, &uid_set(&uids), uidplus).await?;
            removed += uids.len();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        Ok(removed)
    }

    /// Waits with IDLE until the server reports a change, the renewal time passes, or the
    /// daemon stops; then ends IDLE and gives the session back.
    async fn idle(
        &self,
        session: ImapSession,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<ImapSession, ImapError> {
        let renew = Duration::from_secs(self.settings.idle_renew_secs);
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        self.bounded("IDLE", handle.init()).await?;
        // An EXISTS sent before the server's "+ idling" goes to the unsolicited channel, not
        // to the wait below: end IDLE at once then.
        if has_news(&unsolicited) {
            return self.bounded("DONE", handle.done()).await;
        }
        let waited = {
            let (wait, _interrupt) = handle.wait_with_timeout(renew);
            // The library's own time-out restarts on every keep-alive: bound the whole wait.
            tokio::select! {
                r = tokio::time::timeout(renew, wait) => match r {
                    Ok(Ok(IdleResponse::NewData(_))) => Ok(true),
                    Ok(Ok(_)) | Err(_) => Ok(false),
                    Ok(Err(source)) => Err(ImapError::Command { command: "IDLE", source }),
                },
                _ = wait_stop(shutdown) => Ok(false),
            }
        };
        waited?;
        self.bounded("DONE", handle.done()).await
    }
}

/// Empties the unsolicited-responses channel; tells whether the server announced new mail.
fn has_news(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
    let mut news = false;
    while let Ok(r) = rx.try_recv() {
        news |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    news
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

/// Where the password or token of a configuration comes from, for `check`.
pub fn describe_auth(s: &ImapSettings) -> String {
    match s.auth {
        ImapAuth::Login => "LOGIN".into(),
        ImapAuth::Plain => "AUTHENTICATE PLAIN".into(),
        ImapAuth::Xoauth2 => format!(
            "AUTHENTICATE XOAUTH2 (token from {})",
            s.oauth_token_file
                .as_ref()
                .map(|p: &PathBuf| p.display().to_string())
                .unwrap_or_else(|| "a command".into())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_modified_utf7() {
        assert_eq!(encode_folder_name("INBOX"), "INBOX");
        assert_eq!(encode_folder_name("Åtgärdat"), "&AMU-tg&AOQ-rdat");
        assert_eq!(encode_folder_name("Karantän"), "Karant&AOQ-n");
        assert_eq!(encode_folder_name("A&B"), "A&-B");
        // RFC 3501's own example.
        assert_eq!(
            encode_folder_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn uid_sets_are_compact_and_source_refs_round_trip() {
        assert_eq!(uid_set(&[9, 1, 2, 3, 7, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_of(&source_ref(77, 4012)), Some(4012));
        assert_eq!(uid_of("maildir:x"), None);
    }

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

    #[test]
    fn connection_state_changes_are_reported_once() {
        let status = ConnectionStatus::default();
        assert_eq!(status.get(), ConnectionState::Stopped);
        assert!(status.set(ConnectionState::Connecting));
        assert!(!status.set(ConnectionState::Connecting));
        assert_eq!(status.get().as_str(), "connecting");
    }
}
