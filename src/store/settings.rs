//! The settings of the store (`[store]`): owned here, gathered by `config`.

use std::path::PathBuf;

use serde::Deserialize;

use super::postgres;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    /// PostgreSQL at `url` (several instances may share it).
    Postgres,
}

#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    pub kind: StoreKind,
    pub sqlite: PathBuf,
    /// `postgres://user[:password]@host[:port]/database` when `kind = "postgres"` (or
    /// TJID__STORE__URL). No TLS yet: use a server on the host or a private network.
    pub url: String,
    /// Copies of mail read over IMAP (the case page shows the form from them); retention
    /// removes them with the message. Empty: no copies are kept.
    pub originals_dir: PathBuf,
    /// PostgreSQL not reachable at start-up: how long `run` keeps trying (with `/healthz`
    /// answering) before it exits. 0: as long as it takes.
    pub startup_wait_secs: u64,
}

// By hand: the URL may carry a password.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("kind", &self.kind)
            .field("sqlite", &self.sqlite)
            .field("url", &postgres::redact_url(&self.url))
            .field("originals_dir", &self.originals_dir)
            .field("startup_wait_secs", &self.startup_wait_secs)
            .finish()
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: StoreKind::Sqlite,
            sqlite: "var/intake.db".into(),
            url: String::new(),
            originals_dir: "var/originals".into(),
            startup_wait_secs: 0,
        }
    }
}

impl StoreSettings {
    /// What keeps these settings from working (`config` gathers every component's).
    pub fn problems(&self) -> Vec<String> {
        let postgres_url =
            self.url.starts_with("postgres://") || self.url.starts_with("postgresql://");
        match self.kind == StoreKind::Postgres && !postgres_url {
            true => vec!["store.url: a postgres://user@host/database URL is needed with store.kind = \"postgres\"".to_string()],
            false => Vec::new(),
        }
    }
}
