//! The settings of the pages `run` serves: `[http]` (where) and `[web]` (the staff pages).
//! Gathered into `crate::config::Settings` with the others.

use serde::Deserialize;

/// The ops endpoint of `run`: `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Local address to listen on; empty turns the endpoint off.
    pub listen: String,
    /// The pages reach their users over HTTPS (a TLS proxy in front): the staff pages then
    /// send `Strict-Transport-Security`, so a browser never goes back to plain HTTP.
    pub tls: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks, e.g.
    /// `127.0.0.1`, `10.0.0.0/8`). The login limit counts per client: without this, every
    /// client behind a proxy is the proxy.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebSettings {
    /// Serve the staff pages (and the public form downloads) from `run`.
    pub enabled: bool,
    /// Mark cookies `Secure` (on when the pages are reached over HTTPS, e.g. behind a proxy).
    pub secure_cookies: bool,
    /// A login lasts this long.
    pub session_hours: u64,
    /// Failed logins allowed per user name and per client address within `lockout_minutes`.
    pub max_failed_logins: u32,
    pub lockout_minutes: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            enabled: true,
            secure_cookies: false,
            session_hours: 10,
            max_failed_logins: 5,
            lockout_minutes: 15,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            tls: false,
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let listen = self.listen.trim();
        if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "http.listen: not an address and port (e.g. 127.0.0.1:8080): {}",
                self.listen
            ));
        }
        if let Err(bad) = self.proxies() {
            p.push(format!(
                "http.trusted_proxies: not an address or CIDR block (e.g. 10.0.0.0/8): {bad}"
            ));
        }
        p
    }

    /// `trusted_proxies` parsed; the first entry that is not an address or a CIDR block is
    /// the error.
    pub fn proxies(&self) -> Result<Vec<super::client::Cidr>, String> {
        self.trusted_proxies
            .iter()
            .map(|p| super::client::Cidr::parse(p).ok_or_else(|| p.clone()))
            .collect()
    }
}

impl WebSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.session_hours == 0 || self.session_hours > 24 * 31 {
            p.push("web.session_hours: must be between 1 and 744".into());
        }
        if self.max_failed_logins == 0 || self.lockout_minutes == 0 {
            p.push("web.max_failed_logins and web.lockout_minutes: must be at least 1".into());
        }
        p
    }
}
