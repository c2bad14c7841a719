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
    /// Name given in EHLO: a fully qualified domain name or an address literal (`[192.0.2.1]`).
    /// Default: this host's name when it is fully qualified, else the domain of
    /// `intake.own_address` (relays with `reject_non_fqdn_helo_hostname` refuse a short name).
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
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.host.trim().is_empty() {
            p.push("smtp.host: must be set when sink.kind = \"smtp\"".into());
        }
        if self.security == Security::Plain && !crate::net::is_loopback(&self.host) {
            p.push(format!(
                "smtp.security: plain is allowed only to a loopback address, not {}",
                self.host
            ));
        }
        if self.username.is_some() && self.password.is_none() == self.password_file.is_none() {
            p.push(
                "smtp.password / smtp.password_file: set exactly one when smtp.username is set"
                    .into(),
            );
        }
        if let Some(f) = self.ca_file.as_ref().filter(|f| !f.is_file()) {
            p.push(format!("smtp.ca_file: no such file: {}", f.display()));
        }
        if self.timeout_secs == 0 || self.pool_max_size == 0 {
            p.push("smtp.timeout_secs / pool_max_size: must be at least 1".into());
        }
        p.extend(self.hello_name_problem());
        p
    }

    /// Why `hello_name` cannot be used in EHLO, when it cannot.
    pub fn hello_name_problem(&self) -> Option<String> {
        let name = self.hello_name.as_deref()?;
        (!valid_hello_name(name)).then(|| {
            format!(
                "smtp.hello_name: {name:?} is neither a fully qualified domain name (mail.example.se) nor an address literal ([192.0.2.1])"
            )
        })
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        })
    }
}

/// A name fit for EHLO (RFC 5321 §4.1.1.1): a domain of at least two labels (letters, digits,
/// inner hyphens, at most 63 characters each), or an address literal `[IPv4]` / `[IPv6:…]`.
pub fn valid_hello_name(name: &str) -> bool {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return match inner.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => inner.parse::<std::net::Ipv4Addr>().is_ok(),
        };
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // The top-level label is not all digits (that would be an IPv4 address, unbracketed).
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::valid_hello_name;

    #[test]
    fn hello_names_are_fully_qualified_or_address_literals() {
        for ok in [
            "mail.vgregion.se",
            "a-b.example.",
            "[127.0.0.1]",
            "[IPv6:::1]",
        ] {
            assert!(valid_hello_name(ok), "{ok}");
        }
        for bad in [
            "vm",
            "localhost",
            "",
            "-a.se",
            "a..se",
            "127.0.0.1",
            "[300.1.1.1]",
            "a b.se",
            "ä.se",
        ] {
            assert!(!valid_hello_name(bad), "{bad}");
        }
    }
}
