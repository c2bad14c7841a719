//! Replies through an SMTP relay with lettre's async transport (pooled connections). A 4xx
//! answer, a refused connection or a time-out is temporary: the outbox worker retries with
//! back-off. A 5xx answer is permanent: the reply is marked failed and staff see it.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::SinkError;
use super::SmtpSettings;
use crate::net::Security;
use crate::store::OutboxRow;

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("cannot read the SMTP password file {path}: {source}")]
    ReadPassword {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the CA file {path} for SMTP: {reason}")]
    ReadCa { path: String, reason: String },
    #[error("cannot set up TLS for the SMTP server {host}: {source}")]
    Tls {
        host: String,
        source: lettre::transport::smtp::Error,
    },
}

/// RFC 4954's answers to AUTH: 530 authentication required, 534 mechanism too weak, 535
/// credentials invalid, 538 encryption required.
fn is_auth_refusal(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(u16::from(code), 530 | 534 | 535 | 538))
}

pub struct SmtpSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Connections the pool keeps (`[smtp] pool_max_size`): replies sent at once.
    connections: usize,
    /// For `check`: where this sink sends.
    pub endpoint: String,
    ca_file: Option<std::path::PathBuf>,
}

impl SmtpSink {
    pub fn open(s: &SmtpSettings) -> Result<SmtpSink, SmtpSetupError> {
        let host = s.host.trim().to_string();
        let tls_parameters = || -> Result<TlsParameters, SmtpSetupError> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(path) = &s.ca_file {
                builder = builder.certificate_store(CertificateStore::None);
                for der in crate::net::tls::read_pem_certificates(path).map_err(|reason| {
                    SmtpSetupError::ReadCa {
                        path: path.display().to_string(),
                        reason,
                    }
                })? {
                    let cert = Certificate::from_der(der.to_vec()).map_err(|e| {
                        SmtpSetupError::ReadCa {
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
            }
            builder
                .build_rustls()
                .map_err(|source| SmtpSetupError::Tls {
                    host: host.clone(),
                    source,
                })
        };
        let tls = match s.security {
            Security::Tls => Tls::Wrapper(tls_parameters()?),
            Security::Starttls => Tls::Required(tls_parameters()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(s.port())
            .tls(tls)
            .timeout(Some(Duration::from_secs(s.timeout_secs)))
            .pool_config(
                PoolConfig::new()
                    .max_size(s.pool_max_size)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let Some(name) = &s.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        if let Some(user) = &s.username {
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
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpSink {
            transport: builder.build(),
            connections: s.pool_max_size.max(1) as usize,
            endpoint: format!("{host}:{}", s.port()),
            ca_file: s.ca_file.clone(),
        })
    }

    /// EHLO (and authentication, when configured) without sending anything.
    pub async fn test_connection(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "the SMTP server {} did not answer NOOP",
                self.endpoint
            )),
            Err(e) => Err(self.explain(
                format!("cannot connect to the SMTP server {}: {e}", self.endpoint),
                &e,
            )),
        }
    }

    /// The error in one line, with a hint when the server's certificate was refused.
    fn explain(&self, message: String, e: &lettre::transport::smtp::Error) -> String {
        crate::net::tls::explain_refusal(message, e, self.ca_file.as_deref(), "smtp.ca_file")
    }

    /// How many replies may be handed over at once.
    pub fn connections(&self) -> usize {
        self.connections
    }

    pub async fn deliver(&self, reply: &OutboxRow) -> Result<String, SinkError> {
        let permanent = |message: String| SinkError {
            temporary: false,
            message,
        };
        let from = reply
            .sender
            .parse()
            .map_err(|e| permanent(format!("bad sender address: {e}")))?;
        let to = reply
            .recipient
            .parse()
            .map_err(|e| permanent(format!("bad recipient address: {e}")))?;
        let envelope = Envelope::new(Some(from), vec![to]).map_err(|e| permanent(e.to_string()))?;
        match self
            .transport
            .send_raw(&envelope, reply.raw.as_bytes())
            .await
        {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                Ok(format!(
                    "accepted by {}: {} {}",
                    self.endpoint,
                    response.code(),
                    text.join(" ")
                ))
            }
            Err(e) => Err(SinkError {
                // Only an explicit 5xx about this reply is final; everything else (4xx,
                // network, TLS, time-out) may work later. A refused AUTH is about our relay
                // account, not the reply: it waits for ops to fix the credentials.
                temporary: !e.is_permanent() || is_auth_refusal(&e),
                message: self.explain(
                    format!("cannot send the reply through {}: {e}", self.endpoint),
                    &e,
                ),
            }),
        }
    }
}
