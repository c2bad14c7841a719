//! Opening a session: TCP, TLS (implicit or STARTTLS), the greeting, and authentication
//! (LOGIN, PLAIN, XOAUTH2 with a token from a file or a command).

use std::fmt;
use std::time::Duration;

use async_imap::{Authenticator, Client, Session};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{ImapAuth, ImapSettings};
use super::{ImapError, ImapSource};
use crate::net::Security;

/// Anything a session can run over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

pub type ImapSession = Session<Box<dyn Io>>;

impl ImapSource {
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
