//! Network plumbing shared by the mail backends: TLS set-up with rustls (ring provider), and
//! how a connection to a mail server is protected (`security` of `[imap]` and `[smtp]`).

pub mod tls;

use serde::Deserialize;

/// How a connection to a mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// Plain greeting, then STARTTLS before anything else (IMAP 143, SMTP 587).
    Starttls,
    /// No TLS at all: only when configured explicitly (SMTP: only to a loopback address).
    Plain,
}

/// Whether `host` names this machine (plain SMTP is allowed only there).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
