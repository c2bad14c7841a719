//! The settings of the mail source (`[source]`) and of this instance among several
//! (`[instance]`): owned here, gathered by `config`. The IMAP backend's own are in
//! `imap::settings`.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Maildir,
    Imap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SourceSettings {
    pub kind: SourceKind,
    /// Maildir watched by `run` (new/ is read, processed mail moves to cur/).
    pub maildir: PathBuf,
    /// How often `run` looks into the Maildir when nothing arrives.
    pub poll_interval_ms: u64,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            kind: SourceKind::Maildir,
            maildir: "var/maildir".into(),
            poll_interval_ms: 200,
        }
    }
}

/// This instance among several sharing one store (`[instance]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InstanceSettings {
    /// The holder's name in leases and the `instance` label of metrics. Default: the host's
    /// name; give each instance on one host its own (TJID__INSTANCE__NAME).
    pub name: String,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        let name = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| "tjid-intake".into());
        InstanceSettings { name }
    }
}

impl SourceSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.poll_interval_ms == 0 {
            p.push("source.poll_interval_ms: must be at least 1".into());
        }
        p
    }
}

impl InstanceSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.name.trim().is_empty() {
            p.push("instance.name: must not be empty".into());
        }
        p
    }
}
