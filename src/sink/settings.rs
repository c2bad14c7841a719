//! The reply sink's settings (`[sink]`: where replies go; `[smtp]`: the relay), owned by the
//! sink; gathered by `config`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::net::Security;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SinkSettings {
    pub kind: SinkKind,
    /// Directory that receives one .eml file per reply.
    pub dir: PathBuf,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            kind: SinkKind::File,
            dir: "var/outbox".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpSettings {
    pub host: String,
    /// Default by `security`: 465 for tls, 587 for starttls, 25 for plain.
    pub port: Option<u16>,
    pub security: Security,
    pub ca_file: Option<PathBuf>,
    /// Authentication is used when a username is set.
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Name given in EHLO (default: this host's name).
    pub hello_name: Option<String>,
    /// Bound on connecting and on each SMTP command.
    pub timeout_secs: u64,
    /// Connections kept open in the pool.
    pub pool_max_size: u32,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: None,
            security: Security::Starttls,
            ca_file: None,
            username: None,
            password: None,
            password_file: None,
            hello_name: None,
            timeout_secs: 30,
            pool_max_size: 4,
        }
    }
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        })
    }
}
