//! The settings of the pages `run` serves: `[http]` (where) and `[web]` (the staff pages).
//! Gathered into `crate::config::Settings` with the others.

use serde::Deserialize;

/// The ops endpoint of `run`: `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Local address to listen on; empty turns the endpoint off.
    pub listen: String,
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
        }
    }
}
