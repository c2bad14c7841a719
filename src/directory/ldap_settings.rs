//! The settings of the LDAP backend (`[ldap]`): owned here, gathered by `config`.

use std::path::PathBuf;

use serde::Deserialize;

/// KIV over LDAP (used when `directory.kind = "ldap"`).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct LdapSettings {
    /// `ldaps://host[:port]` (implicit TLS) or `ldap://host[:port]` (StartTLS unless `plain`).
    pub url: String,
    /// Talk to an `ldap://` URL without TLS. Only for a server on loopback (tests).
    pub plain: bool,
    /// PEM file with the CA certificate(s) to trust; absent: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The service account's DN for the simple bind.
    pub bind_dn: String,
    /// The service account's password; prefer `password_file` (or TJID__LDAP__PASSWORD).
    pub password: String,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// Where searches start (subtree).
    pub base_dn: String,
    /// Limit for connecting, binding and each search.
    pub timeout_ms: u64,
    /// How long an answer from KIV is reused; 0 turns the cache off.
    pub cache_ttl_secs: u64,
    /// The entry that proves KIV is visible before a decision rests on something absent from
    /// it (`person_not_in_kiv`, …); checked at most once a minute. Default: any care provider
    /// under `base_dn`.
    pub canary_dn: Option<String>,
    /// First delay before an email that waits for KIV is tried again; doubles up to the max.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl std::fmt::Debug for LdapSettings {
    // The password never reaches a log line or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("plain", &self.plain)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("password_file", &self.password_file)
            .field("base_dn", &self.base_dn)
            .field("timeout_ms", &self.timeout_ms)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("canary_dn", &self.canary_dn)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .finish()
    }
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            url: "ldaps://ldap.kiv.vgregion.se".into(),
            plain: false,
            ca_file: None,
            bind_dn: String::new(),
            password: String::new(),
            password_file: None,
            base_dn: "c=SE".into(),
            timeout_ms: 5000,
            cache_ttl_secs: 60,
            canary_dn: None,
            retry_initial_ms: 2000,
            retry_max_ms: 60_000,
        }
    }
}

impl LdapSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = self.url.trim().to_ascii_lowercase();
        if url.starts_with("ldaps://") {
            if self.plain {
                p.push("ldap.plain: an ldaps:// URL always uses TLS; use ldap:// for plain".into());
            }
        } else if !url.starts_with("ldap://") {
            p.push(format!(
                "ldap.url: must start with ldaps:// or ldap://: {}",
                self.url
            ));
        }
        if self.bind_dn.trim().is_empty() {
            p.push("ldap.bind_dn: the service account's DN is required".into());
        }
        match &self.password_file {
            Some(f) if !f.is_file() => {
                p.push(format!("ldap.password_file: no such file: {}", f.display()))
            }
            Some(_) if !self.password.is_empty() => {
                p.push("ldap.password / ldap.password_file: set only one of them".into())
            }
            None if self.password.is_empty() => p.push(
                "ldap.password_file (or ldap.password): the service account's password is required"
                    .into(),
            ),
            _ => {}
        }
        if let Some(f) = &self.ca_file {
            if !f.is_file() {
                p.push(format!("ldap.ca_file: no such file: {}", f.display()));
            }
        }
        if self.base_dn.trim().is_empty() {
            p.push("ldap.base_dn: required".into());
        }
        if self.timeout_ms == 0 {
            p.push("ldap.timeout_ms: must be at least 1".into());
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            p.push("ldap.retry_initial_ms / retry_max_ms: need 0 < initial <= max".into());
        }
        p
    }

    /// The bind password: from `password_file` (its first line) or `password`.
    pub fn read_password(&self) -> std::io::Result<String> {
        match &self.password_file {
            Some(f) => {
                let text = std::fs::read_to_string(f)?;
                Ok(text.lines().next().unwrap_or("").to_string())
            }
            None => Ok(self.password.clone()),
        }
    }
}
