//! Replies through an SMTP relay, over this crate's own client (`smtp_session`), a few
//! connections kept open. A 4xx answer, a refused connection or a time-out is temporary: the
//! outbox worker retries with back-off. A 5xx answer is permanent: the reply is marked failed
//! and staff see it — unless the relay gives the same 5xx for our own address too (a 504 to
//! our EHLO name, a refused sender): then it is refusing us, not the reply, and that is the
//! sink failing (temporary, shown on `/readyz`). A refused transaction ends with RSET and its
//! connection is kept; a connection that is closed says QUIT.
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
    /// The office's own address: the sender of replies, and the recipient of `check`'s
    /// transaction and of the probe that tells a refusal of us from one of a reply.
    own_address: String,
}

impl SmtpSink {
    /// `own_address`: `[intake] own_address` (the default EHLO name's domain, `check`'s
    /// envelope).
    pub fn open(s: &SmtpSettings, own_address: &str) -> Result<SmtpSink, SmtpSetupError> {
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
                hello_name: s
                    .hello_name
                    .clone()
                    .unwrap_or_else(|| default_hello_name(own_address)),
                timeout: Duration::from_secs(s.timeout_secs.max(1)),
            },
            connections: s.pool_max_size.max(1) as usize,
            idle: Mutex::new(Vec::new()),
            ca_file: s.ca_file.clone(),
            own_address: own_address.trim().to_string(),
        })
    }

    /// The name this sink gives in EHLO.
    pub fn hello_name(&self) -> &str {
        &self.endpoint_settings.hello_name
    }

    /// EHLO (and TLS and authentication, when configured), then a transaction up to RCPT TO
    /// from and to the office's own address, RSET and QUIT; sends nothing. A relay that
    /// refuses our EHLO name only at RCPT (Postfix's `reject_non_fqdn_helo_hostname`) fails
    /// here.
    pub async fn test_connection(&self) -> Result<(), String> {
        let attempt = async {
            let mut session = Session::open(&self.endpoint_settings).await?;
            let result = session
                .envelope_only(&self.own_address, &self.own_address)
                .await;
            session.quit().await;
            result
        };
        attempt.await.map_err(|e| {
            let message = match &e {
                SmtpFailure::Refused { during, answer }
                    if matches!(*during, "MAIL FROM" | "RCPT TO") =>
                {
                    let hint = if answer.code == 504 {
                        format!(
                            " (EHLO said {:?}: set smtp.hello_name to this host's fully qualified name)",
                            self.endpoint_settings.hello_name
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "the SMTP server {} refuses a mail from and to {}: {e}{hint}",
                        self.endpoint, self.own_address
                    )
                }
                _ => format!("cannot connect to the SMTP server {}: {e}", self.endpoint),
            };
            self.explain(message, &e)
        })
    }

    /// Closes the kept connections with QUIT (at shutdown).
    pub async fn close(&self) {
        let idle: Vec<_> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.drain(..).collect()
        };
        for (session, _) in idle {
            session.quit().await;
        }
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
            Err((e, session)) => {
                let mut error = self.sink_error(&e);
                if let Some(mut session) = session {
                    let ours = match error.temporary {
                        true => None,
                        false => self.refuses_us_too(&mut session, &from, &e).await,
                    };
                    if let Some(ours) = ours {
                        // The answer to our own address: it names no recipient of ours.
                        error = SinkError {
                            temporary: true,
                            sink_down: true,
                            message: format!(
                                "the SMTP relay {} refuses every mail from us, not this reply ({ours}); EHLO said {:?}",
                                self.endpoint, self.endpoint_settings.hello_name
                            ),
                        };
                        // Shown on /readyz: the relay's words are about us, not a recipient.
                        crate::telemetry::component_problem(
                            crate::telemetry::Component::Sink,
                            &error.message,
                        );
                    }
                    // The refused transaction is reset: the connection is kept.
                    if session.reset().await.is_ok() {
                        self.keep(session);
                    }
                }
                return Ok(Delivery::NotDelivered(error));
            }
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
            Err(e @ SmtpFailure::Refused { .. }) => {
                // The server answered: the connection is fine for the next reply.
                let error = self.sink_error(&e);
                self.keep(session);
                Ok(Delivery::NotDelivered(error))
            }
            Err(e) => Ok(Delivery::Unanswered(format!(
                "handed to {} without its answer: {e}",
                self.endpoint
            ))),
        }
    }

    /// MAIL, RCPT, DATA and the message on a kept connection, or on a new one when the kept
    /// one fails on the way (nothing was delivered: the `.` is not written yet). A refusal of
    /// MAIL, RCPT or DATA comes with its session, still usable after RSET.
    async fn transaction(
        &self,
        from: &str,
        to: &str,
        raw: &[u8],
    ) -> Result<Session, (SmtpFailure, Option<Session>)> {
        if let Some(mut session) = self.take_kept().await {
            match session.send_body(from, to, raw).await {
                Ok(()) => return Ok(session),
                // The server refused this reply: a new connection would hear the same.
                Err(e @ SmtpFailure::Refused { .. }) if e.answer_code() != Some(421) => {
                    return Err((e, Some(session)))
                }
                Err(e) => tracing::debug!(server = %self.endpoint, error = %e,
                    "a kept SMTP connection failed; opening a new one"),
            }
        }
        let mut session = Session::open(&self.endpoint_settings)
            .await
            .map_err(|e| (e, None))?;
        match session.send_body(from, to, raw).await {
            Ok(()) => Ok(session),
            Err(e @ SmtpFailure::Refused { .. }) if e.answer_code() != Some(421) => {
                Err((e, Some(session)))
            }
            Err(e) => Err((e, None)),
        }
    }

    /// The same 5xx as `e` (which refused a reply) given to our own address on the same
    /// connection, at the same step, if it is: then the relay refuses us (our EHLO name, our
    /// sender), which is no fault of the reply.
    async fn refuses_us_too(
        &self,
        session: &mut Session,
        from: &str,
        e: &SmtpFailure,
    ) -> Option<SmtpFailure> {
        let SmtpFailure::Refused { during, answer } = e else {
            return None;
        };
        if !matches!(*during, "MAIL FROM" | "RCPT TO") || session.reset().await.is_err() {
            return None;
        }
        match session.envelope_only(from, &self.own_address).await {
            Err(probe @ SmtpFailure::Refused { .. })
                if matches!(&probe, SmtpFailure::Refused { during: d, answer: a }
                    if d == during && a.code == answer.code) =>
            {
                Some(probe)
            }
            _ => None,
        }
    }

    /// A kept connection young enough to reuse; older ones are closed with QUIT.
    async fn take_kept(&self) -> Option<Session> {
        loop {
            let (session, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()?
            };
            if since.elapsed() < IDLE {
                return Some(session);
            }
            session.quit().await;
        }
    }

    fn keep(&self, session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.connections {
            idle.push((session, Instant::now()));
        } else {
            drop(idle);
            tokio::spawn(session.quit());
        }
    }

    fn sink_error(&self, e: &SmtpFailure) -> SinkError {
        SinkError {
            temporary: e.temporary(),
            sink_down: e.temporary() && !e.about_the_mail(),
            message: self.explain(
                format!("cannot send the reply through {}: {e}", self.endpoint),
                e,
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
                sink_down: false,
                message: format!("bad {what} address: {e}"),
            })
    };
    Ok((
        check("sender", &reply.sender)?,
        check("recipient", &reply.recipient)?,
    ))
}

/// The EHLO name when none is set: this host's name when it is fully qualified, else the
/// domain of the office's own address (a short name such as `vm` is refused by relays with
/// `reject_non_fqdn_helo_hostname`).
fn default_hello_name(own_address: &str) -> String {
    let host = hostname::get().ok().and_then(|h| h.into_string().ok());
    hello_name_from(host.as_deref(), own_address)
}

fn hello_name_from(host: Option<&str>, own_address: &str) -> String {
    if let Some(host) = host.filter(|h| super::valid_hello_name(h)) {
        return host.to_string();
    }
    own_address
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim().to_ascii_lowercase())
        .filter(|d| super::valid_hello_name(d))
        .unwrap_or_else(|| "localhost.localdomain".into())
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

#[cfg(test)]
mod tests {
    use super::hello_name_from;

    #[test]
    fn the_default_ehlo_name_is_fully_qualified() {
        let own = "tjansteid-intake@VGRegion.se";
        assert_eq!(hello_name_from(Some("vm"), own), "vgregion.se");
        assert_eq!(hello_name_from(None, own), "vgregion.se");
        assert_eq!(
            hello_name_from(Some("intake1.vgregion.se"), own),
            "intake1.vgregion.se"
        );
        assert_eq!(hello_name_from(Some("vm"), "x"), "localhost.localdomain");
    }
}
