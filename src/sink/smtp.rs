//! Replies through an SMTP relay, over this crate's own client (`smtp_session`), a few
//! connections kept open. A 4xx answer, a refused connection or a time-out is temporary: the
//! outbox worker retries with back-off. A 5xx answer is permanent: the reply is marked failed
//! and staff see it.
//!
//! Never twice: the outbox commits "handed over" between the message and SMTP's final `.`
//! (see `deliver`). Before that commit the server holds an open transaction that it discards
//! if the sender dies, so the reply can be sent again at once. After it the reply is never
//! sent again by the daemon: a sender that dies (or loses the connection) before the server's
//! answer is recorded leaves the reply *in doubt*, held for staff, who check the relay's log.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::smtp_session::{Endpoint, Session, SmtpFailure, DATA_TERMINATION};
use super::SinkError;
use super::SmtpSettings;
use crate::net::Security;
use crate::store::OutboxRow;

/// A pooled connection unused this long is closed rather than reused.
const IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("cannot read the SMTP password file {path}: {source}")]
    ReadPassword {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up TLS for the SMTP server {host}: {reason}")]
    Tls { host: String, reason: String },
}

/// What became of one reply handed to `SmtpSink::deliver`.
#[derive(Debug)]
pub enum Delivery {
    /// The server accepted it: its answer to the end of data.
    Accepted(String),
    /// The end of data may have been written and no answer came: the server may have it.
    /// Held for staff (sending it again could answer twice).
    Unanswered(String),
    /// Not delivered: refused, or failed before the end of data.
    NotDelivered(SinkError),
    /// The hand-over commit said no (another instance holds the reply now): nothing sent.
    Declined,
}

pub struct SmtpSink {
    endpoint_settings: Endpoint,
    /// Connections kept open (`[smtp] pool_max_size`): replies sent at once.
    connections: usize,
    idle: Mutex<Vec<(Session, Instant)>>,
    /// For `check` and the delivery records: where this sink sends.
    pub endpoint: String,
    ca_file: Option<std::path::PathBuf>,
}

impl SmtpSink {
    pub fn open(s: &SmtpSettings) -> Result<SmtpSink, SmtpSetupError> {
        let host = s.host.trim().to_string();
        let tls = match s.security {
            Security::Plain => None,
            Security::Tls | Security::Starttls => Some(
                crate::net::tls::client_config(s.ca_file.as_deref()).map_err(|reason| {
                    SmtpSetupError::Tls {
                        host: host.clone(),
                        reason,
                    }
                })?,
            ),
        };
        let credentials = match &s.username {
            None => None,
            Some(user) => {
                let password = match (&s.password, &s.password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(path)) => std::fs::read_to_string(path)
                        .map_err(|source| SmtpSetupError::ReadPassword {
                            path: path.display().to_string(),
                            source,
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    (None, None) => String::new(),
                };
                Some((user.clone(), password))
            }
        };
        Ok(SmtpSink {
            endpoint: format!("{host}:{}", s.port()),
            endpoint_settings: Endpoint {
                host,
                port: s.port(),
                security: s.security,
                tls,
                credentials,
                hello_name: s.hello_name.clone().unwrap_or_else(default_hello_name),
                timeout: Duration::from_secs(s.timeout_secs.max(1)),
            },
            connections: s.pool_max_size.max(1) as usize,
            idle: Mutex::new(Vec::new()),
            ca_file: s.ca_file.clone(),
        })
    }

    /// EHLO (and TLS and authentication, when configured), then NOOP; sends nothing.
    pub async fn test_connection(&self) -> Result<(), String> {
        let attempt = async {
            let mut session = Session::open(&self.endpoint_settings).await?;
            session.noop().await?;
            session.quit().await;
            Ok::<_, SmtpFailure>(())
        };
        attempt.await.map_err(|e| {
            self.explain(
                format!("cannot connect to the SMTP server {}: {e}", self.endpoint),
                &e,
            )
        })
    }

    /// The error in one line, with a hint when the server's certificate was refused.
    fn explain(&self, message: String, e: &SmtpFailure) -> String {
        crate::net::tls::explain_refusal(message, e, self.ca_file.as_deref(), "smtp.ca_file")
    }

    /// How long a live sender may take from the hand-over to recording the server's answer
    /// (writing the `.` within the time-out, waiting for the answer at least
    /// `DATA_TERMINATION`), with a margin: a reply awaiting its answer longer than this has
    /// lost its sender.
    pub fn answer_deadline(&self) -> Duration {
        let t = self.endpoint_settings.timeout;
        t + t.max(DATA_TERMINATION) + Duration::from_secs(30)
    }

    /// How many replies may be handed over at once.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// Sends one reply. `hand_over` is called after the whole message is written and before
    /// SMTP's final `.`: it commits that the reply is handed over and says whether to go on
    /// (false: the reply is no longer this sender's; nothing is delivered). Its error is
    /// returned as is, with nothing delivered.
    pub async fn deliver<F, Fut>(&self, reply: &OutboxRow, hand_over: F) -> anyhow::Result<Delivery>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        let (from, to) = match addresses(reply) {
            Ok(pair) => pair,
            Err(e) => return Ok(Delivery::NotDelivered(e)),
        };
        let mut session = match self.transaction(&from, &to, reply.raw.as_bytes()).await {
            Ok(session) => session,
            Err(e) => return Ok(Delivery::NotDelivered(self.sink_error(e))),
        };
        die_here_in_tests("before_hand_over");
        if !hand_over().await? {
            // No `.`: the server drops the open transaction with the connection.
            return Ok(Delivery::Declined);
        }
        die_here_in_tests("after_hand_over");
        match session.end_data().await {
            Ok(answer) => {
                self.keep(session);
                Ok(Delivery::Accepted(format!(
                    "accepted by {}: {answer}",
                    self.endpoint
                )))
            }
            Err(e @ SmtpFailure::Refused { .. }) => Ok(Delivery::NotDelivered(self.sink_error(e))),
            Err(e) => Ok(Delivery::Unanswered(format!(
                "handed to {} without its answer: {e}",
                self.endpoint
            ))),
        }
    }

    /// MAIL, RCPT, DATA and the message on a kept connection, or on a new one when the kept
    /// one fails on the way (nothing was delivered: the `.` is not written yet).
    async fn transaction(&self, from: &str, to: &str, raw: &[u8]) -> Result<Session, SmtpFailure> {
        if let Some(mut session) = self.take_kept() {
            match session.send_body(from, to, raw).await {
                Ok(()) => return Ok(session),
                // The server refused this reply: a new connection would hear the same.
                Err(e @ SmtpFailure::Refused { .. }) if e.answer_code() != Some(421) => {
                    return Err(e)
                }
                Err(e) => tracing::debug!(server = %self.endpoint, error = %e,
                    "a kept SMTP connection failed; opening a new one"),
            }
        }
        let mut session = Session::open(&self.endpoint_settings).await?;
        session.send_body(from, to, raw).await?;
        Ok(session)
    }

    fn take_kept(&self) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((session, since)) = idle.pop() {
            if since.elapsed() < IDLE {
                return Some(session);
            }
        }
        None
    }

    fn keep(&self, session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.connections {
            idle.push((session, Instant::now()));
        }
    }

    fn sink_error(&self, e: SmtpFailure) -> SinkError {
        SinkError {
            temporary: e.temporary(),
            message: self.explain(
                format!("cannot send the reply through {}: {e}", self.endpoint),
                &e,
            ),
        }
    }
}

/// The envelope's addresses, checked (no CR, LF or `<>` smuggled into a command).
fn addresses(reply: &OutboxRow) -> Result<(String, String), SinkError> {
    let check = |what: &str, address: &str| {
        address
            .parse::<lettre::Address>()
            .map(|a| a.to_string())
            .map_err(|e| SinkError {
                temporary: false,
                message: format!("bad {what} address: {e}"),
            })
    };
    Ok((
        check("sender", &reply.sender)?,
        check("recipient", &reply.recipient)?,
    ))
}

/// This host's name for EHLO when it is a plain domain name, else `localhost`.
fn default_hello_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".into())
}

/// Test hook (debug builds only): `TJID_TEST_DIE_AT=<point>` aborts the process there, as a
/// SIGKILL would (tests/smtp_edge.rs).
pub(super) fn die_here_in_tests(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("TJID_TEST_DIE_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    let _ = point;
}
