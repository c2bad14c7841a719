//! KIV over LDAP (ldap3 on tokio, rustls with ring): LDAPS or StartTLS (plain only when
//! configured), a simple bind with the service account, subtree searches under the base DN,
//! a timeout on every step, and a short cache of answers.
//!
//! Entries come back as `LdifEntry` values so that the snapshot's own code classifies and
//! normalises them: both backends read the same attributes the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};

pub use super::ldap_settings::LdapSettings;
use super::ldif::LdifEntry;
use super::KivQuery;

/// The attributes the checks read (see `snapshot.rs`).
const ATTRIBUTES: [&str; 14] = [
    "objectClass",
    "hsaIdentity",
    "personalIdentityNumber",
    "givenName",
    "sn",
    "cn",
    "mail",
    "title",
    "vgrOrgRel",
    "ou",
    "o",
    "hsaResponsibleHealthCareProvider",
    "hsaHealthCareUnitManager",
    "orgNo",
];

/// A unit name longer than this is not looked up (no `ou` in KIV is that long).
const MAX_UNIT_NAME_CHARS: usize = 256;
/// Most entries a unit-name search asks for: the few answers are matched here.
const UNIT_NAME_SIZE_LIMIT: i32 = 200;
/// How much of a unit name's first word the second try searches by.
const UNIT_NAME_PREFIX_CHARS: usize = 6;
const UNIT_BY_NAME: &str = "unit by name";
/// The cache is emptied of stale answers when it grows past this.
const CACHE_PRUNE_AT: usize = 10_000;

/// What went wrong talking to KIV. Messages name the server and the kind of look-up, never a
/// searched value (a personnummer) nor the password.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("cannot read the LDAP password file {path}: {source}")]
    ReadPassword {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the LDAP CA file {path}: {reason}")]
    ReadCa { path: String, reason: String },
    #[error("cannot connect to LDAP server {url}: {source}")]
    Connect {
        url: String,
        source: Box<ldap3::LdapError>,
    },
    #[error("cannot connect to LDAP server {url}: no answer within {ms} ms")]
    ConnectTimeout { url: String, ms: u64 },
    #[error("cannot bind to LDAP server {url} as {dn}: {source}")]
    Bind {
        url: String,
        dn: String,
        source: Box<ldap3::LdapError>,
    },
    #[error("cannot search KIV over LDAP ({what}): {source}")]
    Search {
        what: &'static str,
        source: Box<ldap3::LdapError>,
    },
    #[error("cannot search KIV over LDAP ({what}): the server answered {rc} {text}")]
    Refused {
        what: &'static str,
        rc: u32,
        text: String,
    },
    #[error("LDAP server {url} could not be reached moments ago; not trying again yet")]
    RecentlyDown { url: String },
    #[error("KIV over LDAP: under the base DN {base_dn}, bound as {bind_dn}, there is no {missing} (wrong base DN, an empty directory, or an ACL that hides entries from the service account)")]
    NotKiv {
        base_dn: String,
        bind_dn: String,
        missing: String,
    },
    #[error("KIV over LDAP answers but does not show its canary ({entry}): the directory may be empty or hidden by an ACL, so nothing is decided on an entry being absent; the email waits")]
    CanaryMissing { entry: String },
}

/// A live view of KIV over LDAP. Cheap to share: one connection multiplexes all searches.
pub struct LdapDirectory {
    settings: LdapSettings,
    password: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The shared connection with its generation, so that only the one that failed is dropped.
    conn: tokio::sync::Mutex<Option<(u64, Ldap)>>,
    generation: std::sync::atomic::AtomicU64,
    cache: Mutex<HashMap<KivQuery, (Instant, Vec<LdifEntry>)>>,
    /// After a failed connect, look-ups fail at once until then, so that a batch of emails
    /// does not wait for one connect time-out each.
    down_until: Mutex<Option<Instant>>,
    /// When the canary (`ensure_canary`) was last found.
    canary_seen: Mutex<Option<Instant>>,
}

impl LdapDirectory {
    /// Prepares the client; connects lazily, so the daemon starts while KIV is down.
    pub fn new(settings: &LdapSettings) -> Result<LdapDirectory, LdapError> {
        install_crypto_provider();
        let password = settings
            .read_password()
            .map_err(|source| LdapError::ReadPassword {
                path: settings
                    .password_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source,
            })?;
        let tls = match &settings.ca_file {
            Some(path) => Some(Arc::new(client_config(path)?)),
            None => None,
        };
        Ok(LdapDirectory {
            settings: settings.clone(),
            password,
            tls,
            conn: tokio::sync::Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            down_until: Mutex::new(None),
            canary_seen: Mutex::new(None),
        })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.timeout_ms)
    }

    /// The entries that answer `query`, from the cache when fresh.
    pub async fn fetch(&self, query: &KivQuery) -> Result<Vec<LdifEntry>, LdapError> {
        let ttl = Duration::from_secs(self.settings.cache_ttl_secs);
        if !ttl.is_zero() {
            if let Some((at, entries)) = lock(&self.cache).get(query) {
                if at.elapsed() < ttl {
                    metrics::counter!(crate::telemetry::LDAP_LOOKUPS, "result" => "cached")
                        .increment(1);
                    return Ok(entries.clone());
                }
            }
        }
        let Some(filter) = filter_for(query) else {
            return Ok(Vec::new());
        };
        let what = describe(query);
        let mut result = self.search_with_reconnect(&filter, what).await;
        if let (KivQuery::UnitName(name), Ok(found)) = (query, &result) {
            let key = super::unit_name_key(name);
            let matched = |entries: &[LdifEntry]| {
                entries.iter().any(|e| {
                    e.attrs
                        .iter()
                        .any(|(a, v)| a == "ou" && super::unit_name_key(v) == key)
                })
            };
            if !matched(found) {
                if let Some(fallback) = unit_name_fallback(name) {
                    result = self.search_with_reconnect(&fallback, what).await;
                }
            }
        }
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(crate::telemetry::LDAP_LOOKUPS, "result" => outcome).increment(1);
        crate::telemetry::component_seen(crate::telemetry::Component::Directory, result.is_ok());
        let entries = result?;
        if !ttl.is_zero() {
            let mut cache = lock(&self.cache);
            if cache.len() >= CACHE_PRUNE_AT {
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
                if cache.len() >= CACHE_PRUNE_AT {
                    cache.clear();
                }
            }
            cache.insert(query.clone(), (Instant::now(), entries.clone()));
        }
        Ok(entries)
    }

    async fn search_with_reconnect(
        &self,
        filter: &str,
        what: &'static str,
    ) -> Result<Vec<LdifEntry>, LdapError> {
        let (generation, mut ldap, reused) = self.handle().await?;
        match self.search(&mut ldap, filter, what).await {
            Ok(entries) => Ok(entries),
            Err(e) => {
                self.forget(generation).await;
                if !reused {
                    return Err(e);
                }
                // A connection kept from before may have been closed by a server restart
                // while idle: one more try on a fresh one before the email has to wait.
                tracing::debug!(error = %e, "LDAP search failed on a kept connection; reconnecting");
                let (generation, mut ldap, _) = self.handle().await?;
                let result = self.search(&mut ldap, filter, what).await;
                if result.is_err() {
                    self.forget(generation).await;
                }
                result
            }
        }
    }

    /// The shared connection, connecting (and binding) when there is none. The flag tells
    /// whether it was kept from before.
    async fn handle(&self) -> Result<(u64, Ldap, bool), LdapError> {
        let mut guard = self.conn.lock().await;
        if let Some((generation, ldap)) = guard.as_mut() {
            if !ldap.is_closed() {
                return Ok((*generation, ldap.clone(), true));
            }
        }
        *guard = None;
        if let Some(until) = *lock(&self.down_until) {
            if Instant::now() < until {
                return Err(LdapError::RecentlyDown {
                    url: self.settings.url.clone(),
                });
            }
        }
        match self.connect().await {
            Ok(ldap) => {
                *lock(&self.down_until) = None;
                tracing::info!(url = %self.settings.url, "connected to KIV over LDAP");
                let generation = self
                    .generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                *guard = Some((generation, ldap.clone()));
                Ok((generation, ldap, false))
            }
            Err(e) => {
                *lock(&self.down_until) = Some(
                    Instant::now()
                        + Duration::from_millis(self.settings.retry_initial_ms.min(5000)),
                );
                Err(e)
            }
        }
    }

    /// Drops the shared connection when it is the one that failed.
    async fn forget(&self, failed: u64) {
        let mut guard = self.conn.lock().await;
        if guard
            .as_ref()
            .is_some_and(|(generation, _)| *generation == failed)
        {
            *guard = None;
        }
    }

    /// A new connection, bound as the service account.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        let url = self.settings.url.clone();
        let timeout = self.timeout();
        let mut conn_settings = LdapConnSettings::new().set_conn_timeout(timeout);
        let implicit_tls = url.to_ascii_lowercase().starts_with("ldaps://");
        if !implicit_tls && !self.settings.plain {
            conn_settings = conn_settings.set_starttls(true);
        }
        if let Some(config) = &self.tls {
            conn_settings = conn_settings.set_config(Arc::clone(config));
        }
        let connect = LdapConnAsync::with_settings(conn_settings, &url);
        let (conn, mut ldap) = match tokio::time::timeout(timeout, connect).await {
            Err(_) => {
                return Err(LdapError::ConnectTimeout {
                    url,
                    ms: self.settings.timeout_ms,
                })
            }
            Ok(Err(source)) => {
                return Err(LdapError::Connect {
                    url,
                    source: Box::new(source),
                })
            }
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        let dn = self.settings.bind_dn.clone();
        let bound = ldap
            .with_timeout(timeout)
            .simple_bind(&dn, &self.password)
            .await
            .and_then(|r| r.success());
        if let Err(source) = bound {
            let _ = ldap.unbind().await;
            return Err(LdapError::Bind {
                url,
                dn,
                source: Box::new(source),
            });
        }
        Ok(ldap)
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        what: &'static str,
    ) -> Result<Vec<LdifEntry>, LdapError> {
        let ldap = ldap.with_timeout(self.timeout());
        if what == UNIT_BY_NAME {
            ldap.with_search_options(SearchOptions::new().sizelimit(UNIT_NAME_SIZE_LIMIT));
        }
        let result = ldap
            .search(
                &self.settings.base_dn,
                Scope::Subtree,
                filter,
                &ATTRIBUTES[..],
            )
            .await
            .map_err(|source| LdapError::Search {
                what,
                source: Box::new(source),
            })?;
        let ldap3::SearchResult(raw, status) = result;
        match status.rc {
            0 => {}
            // sizeLimitExceeded: the server's limit cut a name search short; what came is used.
            4 => tracing::warn!(
                what,
                returned = raw.len(),
                "KIV search hit the server's size limit"
            ),
            rc => {
                return Err(LdapError::Refused {
                    what,
                    rc,
                    text: status.text,
                })
            }
        }
        Ok(raw.into_iter().filter_map(to_entry).collect())
    }

    /// For `check` and start-up: a fresh connection, the bind, a read of the base DN, and
    /// proof that the directory holds KIV: one care provider, one unit and one person with
    /// the attributes of SPEC §3.1 under the base DN (a base DN with no KIV data, or an ACL
    /// that hides it from the service account, would make every order "not in KIV").
    pub async fn check_connection(&self) -> Result<String, LdapError> {
        let mut ldap = self.connect().await?;
        let result = self.check_base_and_kiv(&mut ldap).await;
        let _ = ldap.unbind().await;
        result
    }

    /// At start-up: a directory that answers but does not hold KIV is a configuration error
    /// (the daemon does not start); one that cannot be reached is not (mail waits for it).
    pub async fn check_at_start_up(&self) -> Result<(), LdapError> {
        match self.check_connection().await {
            Ok(what) => {
                tracing::info!(url = %self.settings.url, "{what}");
                Ok(())
            }
            // No KIV data, no base DN (32), a malformed one (34), no access to it (50).
            Err(e @ LdapError::NotKiv { .. }) => Err(e),
            Err(
                e @ LdapError::Refused {
                    rc: 32 | 34 | 50, ..
                },
            ) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "KIV over LDAP cannot be reached at start-up; mail waits for it");
                Ok(())
            }
        }
    }

    async fn check_base_and_kiv(&self, ldap: &mut Ldap) -> Result<String, LdapError> {
        let what = "the base DN";
        let result = ldap
            .with_timeout(self.timeout())
            .search(
                &self.settings.base_dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["1.1"],
            )
            .await
            .map_err(|source| LdapError::Search {
                what,
                source: Box::new(source),
            })?;
        match result.1.rc {
            0 if !result.0.is_empty() => {}
            0 | 32 => {
                return Err(LdapError::Refused {
                    what,
                    rc: 32,
                    text: format!("no entry {}", self.settings.base_dn),
                })
            }
            rc => {
                return Err(LdapError::Refused {
                    what,
                    rc,
                    text: result.1.text,
                })
            }
        }
        let mut entries = Vec::new();
        for filter in [PROVIDER_FILTER, UNIT_FILTER, PERSON_FILTER] {
            entries.extend(
                self.search_one(
                    ldap,
                    &self.settings.base_dn,
                    Scope::Subtree,
                    filter,
                    "KIV content",
                )
                .await?,
            );
        }
        let missing = super::KivSnapshot::from_entries(&entries).missing_kinds();
        if !missing.is_empty() {
            return Err(LdapError::NotKiv {
                base_dn: self.settings.base_dn.clone(),
                bind_dn: self.settings.bind_dn.clone(),
                missing: missing.join(", "),
            });
        }
        Ok(format!(
            "bound as {}; base DN {} holds KIV (a care provider, a unit and a person found)",
            self.settings.bind_dn, self.settings.base_dn
        ))
    }

    /// At most one entry for `filter` (size limit 1), with the attributes the checks read.
    async fn search_one(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        what: &'static str,
    ) -> Result<Vec<LdifEntry>, LdapError> {
        let ldap = ldap.with_timeout(self.timeout());
        ldap.with_search_options(SearchOptions::new().sizelimit(1));
        let ldap3::SearchResult(raw, status) = ldap
            .search(base, scope, filter, &ATTRIBUTES[..])
            .await
            .map_err(|source| LdapError::Search {
                what,
                source: Box::new(source),
            })?;
        match status.rc {
            // 4: sizeLimitExceeded, there are more: one is all that was asked.
            0 | 4 => Ok(raw.into_iter().filter_map(to_entry).collect()),
            // noSuchObject: a canary DN that is not there (or hidden).
            32 => Ok(Vec::new()),
            rc => Err(LdapError::Refused {
                what,
                rc,
                text: status.text,
            }),
        }
    }

    /// Whether KIV showed a known entry within the last `CANARY_FRESH`: by default any care
    /// provider under the base DN, or the entry `[ldap] canary_dn`. A decision that rests on
    /// something absent from KIV is made only then; else the email waits as when KIV is down
    /// (an emptied base DN or an ACL that hides entries must not turn into "not in KIV").
    pub async fn ensure_canary(&self) -> Result<(), LdapError> {
        if lock(&self.canary_seen).is_some_and(|at| at.elapsed() < CANARY_FRESH) {
            return Ok(());
        }
        self.probe().await
    }

    /// Looks for the canary now (`ensure_canary`), whatever was seen before: whether KIV is
    /// back, for the emails that wait for it.
    pub async fn probe(&self) -> Result<(), LdapError> {
        let what = "the canary entry";
        let (base, scope, filter) = match self.settings.canary_dn.as_deref().map(str::trim) {
            Some(dn) if !dn.is_empty() => (dn.to_string(), Scope::Base, "(objectClass=*)"),
            _ => (
                self.settings.base_dn.clone(),
                Scope::Subtree,
                PROVIDER_FILTER,
            ),
        };
        let found = async {
            let (generation, mut ldap, _) = self.handle().await?;
            let result = self.search_one(&mut ldap, &base, scope, filter, what).await;
            if result.is_err() {
                self.forget(generation).await;
            }
            result
        }
        .await;
        let result = match found {
            Ok(entries) if !entries.is_empty() => {
                *lock(&self.canary_seen) = Some(Instant::now());
                Ok(())
            }
            Ok(_) => Err(LdapError::CanaryMissing {
                entry: match scope {
                    Scope::Base => base,
                    _ => format!("any care provider under {base}"),
                },
            }),
            Err(e) => Err(e),
        };
        crate::telemetry::component_seen(crate::telemetry::Component::Directory, result.is_ok());
        if let Err(e) = &result {
            crate::telemetry::component_problem(
                crate::telemetry::Component::Directory,
                &e.to_string(),
            );
        }
        result
    }
}

/// Searches that find one entry of each kind of KIV entry (SPEC §3.1).
const PROVIDER_FILTER: &str = "(&(objectClass=organization)(hsaIdentity=*)(o=*))";
const UNIT_FILTER: &str = "(&(objectClass=organizationalUnit)(hsaIdentity=*)(ou=*)(hsaResponsibleHealthCareProvider=*)(hsaHealthCareUnitManager=*))";
const PERSON_FILTER: &str = "(&(|(objectClass=inetOrgPerson)(objectClass=hsaPersonExtension))(hsaIdentity=*)(personalIdentityNumber=*)(givenName=*)(sn=*)(vgrOrgRel=*))";
/// How long a canary answer lets decisions that rest on absence from KIV be made.
const CANARY_FRESH: Duration = Duration::from_secs(60);

/// Installs ring as the process's rustls provider (the only one compiled in). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client_config(path: &std::path::Path) -> Result<rustls::ClientConfig, LdapError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let err = |reason: String| LdapError::ReadCa {
        path: path.display().to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The search filter for a query; `None` when it cannot match anything. A unit name is
/// searched by equality on `ou` (its matching rule ignores case and collapses inner spaces),
/// which an index serves; `unit_name_fallback` is the second try.
pub fn filter_for(query: &KivQuery) -> Option<String> {
    match query {
        KivQuery::Pnr(p) => {
            if p.len() != 12 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // KIV holds 12 digits; some exports write a hyphen, which the snapshot accepts too.
            Some(format!(
                "(|(personalIdentityNumber={p})(personalIdentityNumber={}-{}))",
                &p[..8],
                &p[8..]
            ))
        }
        KivQuery::Hsa(id) => Some(format!("(hsaIdentity={})", ldap3::ldap_escape(id.as_str()))),
        KivQuery::UnitName(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_UNIT_NAME_CHARS {
                return None;
            }
            Some(format!(
                "(&(objectClass=organizationalUnit)(ou={}))",
                ldap3::ldap_escape(name)
            ))
        }
    }
}

/// The second try for a unit name that equality did not find (the form writes
/// "Vårdcentralen Ekmansgatan" as "VårdcentralenEkmansgatan", or KIV has an extra space):
/// an initial substring, the first `UNIT_NAME_PREFIX_CHARS` characters of the name's first
/// word, and, when there are more words, the longest of them anywhere in `ou`; indexes
/// serve both and their intersection is small. Bounded by `UNIT_NAME_SIZE_LIMIT`; the few
/// answers are matched here by the snapshot's rule (ignoring case and spacing). `None` when
/// the first word is too short to narrow the search.
pub fn unit_name_fallback(name: &str) -> Option<String> {
    let mut words = name.split_whitespace();
    let first = words.next()?;
    if first.chars().count() < 3 || name.chars().count() > MAX_UNIT_NAME_CHARS {
        return None;
    }
    let prefix: String = first.chars().take(UNIT_NAME_PREFIX_CHARS).collect();
    let mut parts = format!("(ou={}*)", ldap3::ldap_escape(prefix.as_str()));
    if let Some(word) = words
        .max_by_key(|w| w.chars().count())
        .filter(|w| w.chars().count() >= 4)
    {
        parts.push_str(&format!("(ou=*{}*)", ldap3::ldap_escape(word)));
    }
    Some(format!("(&(objectClass=organizationalUnit){parts})"))
}

fn describe(query: &KivQuery) -> &'static str {
    match query {
        KivQuery::Pnr(_) => "person by personnummer",
        KivQuery::Hsa(_) => "entry by HSA-id",
        KivQuery::UnitName(_) => UNIT_BY_NAME,
    }
}

/// A search result as an `LdifEntry` (names lower-cased, options stripped). A malformed entry
/// from the server is dropped rather than trusted.
fn to_entry(raw: ldap3::ResultEntry) -> Option<LdifEntry> {
    let entry =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw)))
            .ok()?;
    let mut attrs = Vec::new();
    let mut names: Vec<&String> = entry.attrs.keys().collect();
    names.sort();
    for name in names {
        let key = name.split(';').next().unwrap_or(name).to_ascii_lowercase();
        for value in &entry.attrs[name] {
            attrs.push((key.clone(), value.clone()));
        }
    }
    Some(LdifEntry {
        dn: entry.dn,
        attrs,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_escape_and_never_widen_beyond_the_key() {
        assert_eq!(
            filter_for(&KivQuery::Pnr("191212121212".into())).unwrap(),
            "(|(personalIdentityNumber=191212121212)(personalIdentityNumber=19121212-1212))"
        );
        assert_eq!(filter_for(&KivQuery::Pnr("1912*".into())), None);
        assert_eq!(
            filter_for(&KivQuery::Hsa("SE1-A*)".into())).unwrap(),
            "(hsaIdentity=SE1-A\\2a\\29)"
        );
        assert_eq!(
            filter_for(&KivQuery::UnitName("vc (a*)".into())).unwrap(),
            "(&(objectClass=organizationalUnit)(ou=vc \\28a\\2a\\29))"
        );
        assert_eq!(
            filter_for(&KivQuery::UnitName("å".into())).unwrap(),
            "(&(objectClass=organizationalUnit)(ou=å))"
        );
        // One initial substring: indexable, never a wildcard between characters.
        assert_eq!(
            unit_name_fallback("vårdcentralenekmansgatan").unwrap(),
            "(&(objectClass=organizationalUnit)(ou=vårdce*))"
        );
        assert_eq!(
            unit_name_fallback("vårdcentralen ekmans gatan 2").unwrap(),
            "(&(objectClass=organizationalUnit)(ou=vårdce*)(ou=*ekmans*))"
        );
        assert_eq!(
            unit_name_fallback("vc(a)* x").unwrap(),
            "(&(objectClass=organizationalUnit)(ou=vc\\28a\\29\\2a*))"
        );
        assert_eq!(unit_name_fallback("vc ab"), None);
        assert_eq!(filter_for(&KivQuery::UnitName(String::new())), None);
    }
}
