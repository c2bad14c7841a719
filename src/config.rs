//! Typed settings. Layers: built-in defaults, then the TOML file (`config/default.toml`, or
//! `--config FILE`), then environment variables `TJID__SECTION__KEY`. Unknown keys are errors
//! and every problem is reported at once, each with its key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

// Settings owned by their components; gathered here.
pub use crate::directory::ldap::LdapSettings;
pub use crate::store::{StoreKind, StoreSettings};

pub use crate::telemetry::{LogFormat, LogSettings};
pub use crate::web::settings::{HttpSettings, WebSettings};

/// The file used when `--config` is not given (relative to the current directory).
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub kiv: KivSettings,
    pub directory: DirectorySettings,
    pub ldap: LdapSettings,
    pub http: HttpSettings,
    pub providers: ProviderSettings,
    pub intake: IntakeSettings,
    pub source: SourceSettings,
    pub store: StoreSettings,
    pub imap: ImapSettings,
    pub instance: InstanceSettings,
    pub sink: SinkSettings,
    pub smtp: SmtpSettings,
    pub outbox: OutboxSettings,
    pub rate_limit: RateLimitSettings,
    pub limits: LimitSettings,
    pub ocr: OcrConfig,
    pub log: LogSettings,
    pub web: WebSettings,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KivSettings {
    /// KIV snapshot in LDIF (the embedded default directory).
    pub ldif: PathBuf,
}

/// Where KIV is read from: the LDIF snapshot of `[kiv] ldif` (the embedded default) or LDAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    Ldif,
    Ldap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DirectorySettings {
    pub kind: DirectoryKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// Register of connected providers (CSV).
    pub csv: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IntakeSettings {
    /// The intake's own address: replies come from it, mail from it is ignored.
    pub own_address: String,
    /// Display name on replies.
    pub display_name: String,
    pub require_authenticated_sender: bool,
    /// Whose `Authentication-Results` header is trusted.
    pub authserv_id: String,
    /// Where providers reach a person (printed in replies).
    pub office_address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Maildir,
    Imap,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuth {
    Login,
    Plain,
    Xoauth2,
}

/// What happens to a message at the IMAP server once its outcome is committed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AfterAction {
    /// `move:FOLDER`: MOVE (or COPY + \Deleted + UID EXPUNGE) into FOLDER (UTF-8 name).
    Move(String),
    /// `flag:KEYWORD`: set \Seen and KEYWORD, and leave the message where it is.
    Flag(String),
}

impl TryFrom<String> for AfterAction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (verb, arg) = s.split_once(':').unwrap_or((s.as_str(), ""));
        let arg = arg.trim();
        match verb.trim() {
            "move" if !arg.is_empty() => Ok(AfterAction::Move(arg.to_string())),
            "flag"
                if !arg.is_empty()
                    && arg
                        .chars()
                        .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c)) =>
            {
                Ok(AfterAction::Flag(arg.to_string()))
            }
            "flag" if arg.is_empty() => Ok(AfterAction::Flag("$TjidDone".into())),
            _ => Err(format!("`{s}`: expected `move:FOLDER` or `flag:KEYWORD`")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ImapSettings {
    pub host: String,
    /// Default by `security`: 993 for tls, 143 otherwise.
    pub port: Option<u16>,
    pub security: Security,
    /// PEM file with the CA(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub auth: ImapAuth,
    /// For login/plain: the password, or better a file that holds it.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// For xoauth2: a file holding a fresh access token, or a command printing one.
    pub oauth_token_file: Option<PathBuf>,
    pub oauth_token_command: Option<String>,
    /// The folder read (UTF-8; encoded as IMAP modified UTF-7 on the wire).
    pub folder: String,
    pub processed: AfterAction,
    pub ignored: AfterAction,
    pub quarantined: AfterAction,
    /// Create the target folders at start-up when they are missing.
    pub create_folders: bool,
    /// Messages per UID FETCH.
    pub batch_size: usize,
    /// A larger message is not downloaded; it is recorded as quarantined from its header.
    pub max_message_bytes: Option<usize>,
    pub connect_timeout_secs: u64,
    /// Bound on every single IMAP command (a FETCH of one batch included).
    pub command_timeout_secs: u64,
    /// Wait with IDLE when the server offers it (else poll).
    pub idle: bool,
    /// IDLE is re-issued after this long (RFC 2177: at most 29 minutes).
    pub idle_renew_secs: u64,
    /// Polling interval when IDLE is off or missing.
    pub poll_interval_secs: u64,
    /// Reconnect back-off: first delay, doubling up to the cap, with ±50 % jitter.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_secs: u64,
    /// Several instances on one mailbox: the one holding the lease on the folder reads it.
    /// The holder renews every lease_secs / 3; another takes over once it has run out.
    pub lease_secs: u64,
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

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            host: String::new(),
            port: None,
            security: Security::Tls,
            ca_file: None,
            username: String::new(),
            auth: ImapAuth::Login,
            password: None,
            password_file: None,
            oauth_token_file: None,
            oauth_token_command: None,
            folder: "INBOX".into(),
            processed: AfterAction::Move("Behandlat".into()),
            ignored: AfterAction::Move("Ignorerat".into()),
            quarantined: AfterAction::Move("Karantän".into()),
            create_folders: true,
            batch_size: 50,
            max_message_bytes: None,
            connect_timeout_secs: 20,
            command_timeout_secs: 60,
            idle: true,
            idle_renew_secs: 25 * 60,
            poll_interval_secs: 60,
            reconnect_initial_ms: 1000,
            reconnect_max_secs: 300,
            lease_secs: 30,
        }
    }
}

impl ImapSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.security == Security::Tls {
            993
        } else {
            143
        })
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    File,
    Smtp,
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

/// Per-recipient limit on replies: breaks loops with robots that do not mark themselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// At most `max_per_window` replies to one address within `window_secs`…
    pub max_per_window: u32,
    pub window_secs: u64,
    /// …and at most `max_per_day` within 24 hours. 0 turns a limit off.
    pub max_per_day: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            max_per_window: 10,
            window_secs: 600,
            max_per_day: 40,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SinkSettings {
    pub kind: SinkKind,
    /// Directory that receives one .eml file per reply.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OutboxSettings {
    /// First retry delay; doubles per attempt up to `max_backoff_secs`.
    pub initial_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// After this long without success a reply is marked failed.
    pub give_up_after_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// A larger message is quarantined unread.
    pub max_message_bytes: usize,
    /// A larger attachment counts as unreadable.
    pub max_attachment_bytes: usize,
    pub max_pdf_pages: usize,
    pub max_attachments: usize,
    /// Wall-clock limit for reading one email's forms.
    pub processing_timeout_secs: u64,
}

/// Text recognition of scans (src/ocr).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OcrConfig {
    /// Read image-only scans with Tesseract. Off: a scan counts as an unreadable attachment.
    pub enabled: bool,
    /// Tesseract language model.
    pub lang: String,
    /// Pages recognised at once in the whole process; 0 means one per core.
    pub workers: usize,
    /// Limit for one Tesseract run on one page.
    pub page_timeout_secs: u64,
    /// Scanned pages of one attachment that are read; later pages are left out.
    pub max_pages: usize,
    /// An image with more pixels than this is not decoded.
    pub max_pixels: u64,
    /// Address space of each external program (pdftoppm, tesseract), in MiB; 0: no limit.
    pub child_memory_mb: u64,
}

impl OcrConfig {
    /// The settings the OCR stage runs with.
    pub fn settings(&self) -> crate::ocr::OcrSettings {
        let d = crate::ocr::OcrSettings::default();
        crate::ocr::OcrSettings {
            enabled: self.enabled,
            lang: self.lang.clone(),
            page_timeout: std::time::Duration::from_secs(self.page_timeout_secs),
            raster: crate::ocr::RasterLimits {
                max_pages: self.max_pages,
                max_pixels: self.max_pixels,
                ..d.raster
            },
        }
    }
}

impl Default for OcrConfig {
    fn default() -> Self {
        let d = crate::ocr::OcrSettings::default();
        OcrConfig {
            enabled: d.enabled,
            lang: d.lang,
            workers: 0,
            page_timeout_secs: d.page_timeout.as_secs(),
            max_pages: d.raster.max_pages,
            max_pixels: d.raster.max_pixels,
            child_memory_mb: crate::ocr::child::DEFAULT_MEMORY_MB,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Run the purge once a day inside `run`.
    pub enabled: bool,
    /// Ignored mail (auto-replies, bounces, duplicates), counted from its arrival.
    pub ignored_days: u64,
    /// Quarantined mail, counted from its arrival.
    pub quarantined_days: u64,
    /// Rejected cases (confirmed or not), counted from their last event.
    pub rejected_days: u64,
    /// Completed cases (card handed out, card deregistered), counted from their last event.
    pub completed_days: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            enabled: true,
            ignored_days: 30,
            quarantined_days: 90,
            rejected_days: 90,
            completed_days: 730,
        }
    }
}

impl RetentionSettings {
    pub fn policy(&self) -> crate::store::RetentionPolicy {
        let ms = |days: u64| (days.min(100_000) as i64) * crate::clock::DAY_MS;
        crate::store::RetentionPolicy {
            ignored_ms: ms(self.ignored_days),
            quarantined_ms: ms(self.quarantined_days),
            rejected_ms: ms(self.rejected_days),
            completed_ms: ms(self.completed_days),
        }
    }
}

impl Default for KivSettings {
    fn default() -> Self {
        KivSettings {
            ldif: "fixtures/kiv.ldif".into(),
        }
    }
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            kind: DirectoryKind::Ldif,
        }
    }
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            csv: "fixtures/providers.csv".into(),
        }
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            own_address: "tjansteid-intake@vgregion.se".into(),
            display_name: "TjänsteID-service".into(),
            require_authenticated_sender: false,
            authserv_id: "mx.vgregion.se".into(),
            office_address: "tjansteid@vgregion.se".into(),
        }
    }
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

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            kind: SinkKind::File,
            dir: "var/outbox".into(),
        }
    }
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            initial_backoff_secs: 5,
            max_backoff_secs: 3600,
            give_up_after_hours: 72,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 40 * 1024 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            max_pdf_pages: 50,
            max_attachments: 20,
            processing_timeout_secs: 300,
        }
    }
}

/// Every problem found in a configuration, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("the configuration has {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Settings {
    /// Loads settings from `file` (or the default file when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError {
                        problems: vec![format!(
                            "cannot read configuration file {}: no such file",
                            path.display()
                        )],
                    });
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    builder = builder
                        .add_source(config::File::from(default).format(config::FileFormat::Toml));
                }
            }
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TJID__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TJID")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let raw = builder.build().map_err(|e| ConfigError {
            problems: vec![e.to_string()],
        })?;

        let mut unknown = Vec::new();
        let settings: Result<Settings, _> =
            serde_ignored::deserialize(raw, |path| unknown.push(path.to_string()));
        for key in unknown {
            problems.push(format!("{key}: unknown key"));
        }
        let settings = match settings {
            Ok(s) => s,
            Err(e) => {
                problems.push(e.to_string());
                return Err(ConfigError { problems });
            }
        };
        problems.extend(settings.problems());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Checks values that deserialised but cannot work.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        // The snapshot is read only when it is the directory; with LDAP it may be absent.
        if self.directory.kind == DirectoryKind::Ldif && !self.kiv.ldif.is_file() {
            p.push(format!(
                "kiv.ldif: no such file: {}",
                self.kiv.ldif.display()
            ));
        }
        if self.directory.kind == DirectoryKind::Ldap {
            p.extend(self.ldap.problems());
        }
        if self.store.kind == StoreKind::Postgres
            && !(self.store.url.starts_with("postgres://")
                || self.store.url.starts_with("postgresql://"))
        {
            p.push("store.url: a postgres://user@host/database URL is needed with store.kind = \"postgres\"".to_string());
        }
        if !self.http.listen.trim().is_empty()
            && self
                .http
                .listen
                .trim()
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            p.push(format!(
                "http.listen: not an address and port (e.g. 127.0.0.1:8080): {}",
                self.http.listen
            ));
        }
        if let Err(bad) = self.http.proxies() {
            p.push(format!(
                "http.trusted_proxies: not an address or CIDR block (e.g. 10.0.0.0/8): {bad}"
            ));
        }
        if !self.providers.csv.is_file() {
            p.push(format!(
                "providers.csv: no such file: {}",
                self.providers.csv.display()
            ));
        }
        if crate::domain::Email::parse(&self.intake.own_address).is_err() {
            p.push("intake.own_address: not a valid e-mail address".into());
        }
        if crate::domain::Email::parse(&self.intake.office_address).is_err() {
            p.push("intake.office_address: not a valid e-mail address".into());
        }
        if self.intake.authserv_id.trim().is_empty() && self.intake.require_authenticated_sender {
            p.push(
                "intake.authserv_id: must be set when require_authenticated_sender is on".into(),
            );
        }
        if self.source.poll_interval_ms == 0 {
            p.push("source.poll_interval_ms: must be at least 1".into());
        }
        if self.outbox.initial_backoff_secs == 0
            || self.outbox.max_backoff_secs < self.outbox.initial_backoff_secs
        {
            p.push(
                "outbox.initial_backoff_secs / max_backoff_secs: need 0 < initial <= max".into(),
            );
        }
        if self.limits.max_pdf_pages == 0 || self.limits.max_attachments == 0 {
            p.push("limits: max_pdf_pages and max_attachments must be at least 1".into());
        }
        if self.ocr.page_timeout_secs == 0 || self.ocr.max_pages == 0 || self.ocr.max_pixels == 0 {
            p.push("ocr: page_timeout_secs, max_pages and max_pixels must be at least 1".into());
        }
        if self.ocr.lang.trim().is_empty()
            || !self
                .ocr
                .lang
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+')
        {
            p.push(format!(
                "ocr.lang: not a Tesseract model name (e.g. swe): {:?}",
                self.ocr.lang
            ));
        }
        if self.limits.processing_timeout_secs == 0 {
            p.push("limits.processing_timeout_secs: must be at least 1".into());
        }
        if self.source.kind == SourceKind::Imap {
            p.extend(self.imap_problems());
        }
        if self.sink.kind == SinkKind::Smtp {
            p.extend(self.smtp_problems());
        }
        if self.rate_limit.max_per_window > 0 && self.rate_limit.window_secs == 0 {
            p.push("rate_limit.window_secs: must be at least 1 when max_per_window is set".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.push(format!("log.level: {e}"));
        }
        if self.web.session_hours == 0 || self.web.session_hours > 24 * 31 {
            p.push("web.session_hours: must be between 1 and 744".into());
        }
        if self.web.max_failed_logins == 0 || self.web.lockout_minutes == 0 {
            p.push("web.max_failed_logins and web.lockout_minutes: must be at least 1".into());
        }
        for (key, days) in [
            ("ignored_days", self.retention.ignored_days),
            ("quarantined_days", self.retention.quarantined_days),
            ("rejected_days", self.retention.rejected_days),
            ("completed_days", self.retention.completed_days),
        ] {
            if !(1..=36_500).contains(&days) {
                p.push(format!("retention.{key}: must be between 1 and 36500 days"));
            }
        }
        p
    }

    fn imap_problems(&self) -> Vec<String> {
        let i = &self.imap;
        let mut p = Vec::new();
        if i.host.trim().is_empty() {
            p.push("imap.host: must be set when source.kind = \"imap\"".into());
        }
        if i.username.trim().is_empty() {
            p.push("imap.username: must be set".into());
        }
        match i.auth {
            ImapAuth::Login | ImapAuth::Plain => {
                if i.password.is_none() == i.password_file.is_none() {
                    p.push("imap.password / imap.password_file: set exactly one".into());
                }
            }
            ImapAuth::Xoauth2 => {
                if i.oauth_token_file.is_none() == i.oauth_token_command.is_none() {
                    p.push("imap.oauth_token_file / imap.oauth_token_command: set exactly one for xoauth2".into());
                }
            }
        }
        if let Some(f) = i.ca_file.as_ref().filter(|f| !f.is_file()) {
            p.push(format!("imap.ca_file: no such file: {}", f.display()));
        }
        if i.folder.trim().is_empty() {
            p.push("imap.folder: must not be empty".into());
        }
        if i.lease_secs < 2 {
            p.push("imap.lease_secs: must be at least 2".into());
        }
        if self.instance.name.trim().is_empty() {
            p.push("instance.name: must not be empty".into());
        }
        for (key, action) in [
            ("processed", &i.processed),
            ("ignored", &i.ignored),
            ("quarantined", &i.quarantined),
        ] {
            if let AfterAction::Move(folder) = action {
                if folder == &i.folder {
                    p.push(format!(
                        "imap.{key}: cannot move into the folder that is read ({folder})"
                    ));
                }
            }
        }
        if i.batch_size == 0 {
            p.push("imap.batch_size: must be at least 1".into());
        }
        if i.connect_timeout_secs == 0 || i.command_timeout_secs == 0 {
            p.push("imap.connect_timeout_secs / command_timeout_secs: must be at least 1".into());
        }
        if i.idle_renew_secs == 0 || i.idle_renew_secs > 29 * 60 {
            p.push("imap.idle_renew_secs: must be between 1 and 1740 (29 minutes)".into());
        }
        if i.poll_interval_secs == 0 {
            p.push("imap.poll_interval_secs: must be at least 1".into());
        }
        if i.reconnect_initial_ms == 0 || i.reconnect_max_secs * 1000 < i.reconnect_initial_ms {
            p.push(
                "imap.reconnect_initial_ms / reconnect_max_secs: need 0 < initial <= max".into(),
            );
        }
        p
    }

    fn smtp_problems(&self) -> Vec<String> {
        let s = &self.smtp;
        let mut p = Vec::new();
        if s.host.trim().is_empty() {
            p.push("smtp.host: must be set when sink.kind = \"smtp\"".into());
        }
        if s.security == Security::Plain && !is_loopback(&s.host) {
            p.push(format!(
                "smtp.security: plain is allowed only to a loopback address, not {}",
                s.host
            ));
        }
        if s.username.is_some() && s.password.is_none() == s.password_file.is_none() {
            p.push(
                "smtp.password / smtp.password_file: set exactly one when smtp.username is set"
                    .into(),
            );
        }
        if let Some(f) = s.ca_file.as_ref().filter(|f| !f.is_file()) {
            p.push(format!("smtp.ca_file: no such file: {}", f.display()));
        }
        if s.timeout_secs == 0 || s.pool_max_size == 0 {
            p.push("smtp.timeout_secs / pool_max_size: must be at least 1".into());
        }
        p
    }
}

/// Whether `host` names this machine (plain SMTP is allowed only there).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    fn minimal(dir: &tempfile::TempDir, extra: &str) -> PathBuf {
        let ldif = write(dir, "kiv.ldif", "");
        let csv = write(dir, "p.csv", "organisationsnummer,vardgivare,ansluten\n");
        let text = format!(
            "[kiv]\nldif = {:?}\n[providers]\ncsv = {:?}\n[intake]\nown_address = \"tjansteid-intake@vgregion.se\"\nrequire_authenticated_sender = false\nauthserv_id = \"mx.vgregion.se\"\n{extra}",
            ldif, csv
        );
        write(dir, "c.toml", &text)
    }

    #[test]
    fn the_spec_keys_alone_are_a_valid_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "");
        let s = Settings::load_with_env(Some(&file), []).unwrap();
        assert_eq!(s.intake.authserv_id, "mx.vgregion.se");
        assert_eq!(s.store.sqlite, PathBuf::from("var/intake.db"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "[store]\nsqlit = \"x.db\"\n[log]\nformt = \"json\"\n[outbox]\ninitial_backoff_secs = 0\n");
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("store.sqlit: unknown key"), "{all}");
        assert!(all.contains("log.formt: unknown key"), "{all}");
        assert!(all.contains("outbox.initial_backoff_secs"), "{all}");
        assert_eq!(err.problems.len(), 3, "{all}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "");
        let env = [
            (
                "TJID__INTAKE__REQUIRE_AUTHENTICATED_SENDER".to_string(),
                "true".to_string(),
            ),
            (
                "TJID__STORE__SQLITE".to_string(),
                "/tmp/other.db".to_string(),
            ),
        ];
        let s = Settings::load_with_env(Some(&file), env).unwrap();
        assert!(s.intake.require_authenticated_sender);
        assert_eq!(s.store.sqlite, PathBuf::from("/tmp/other.db"));
    }

    #[test]
    fn imap_and_smtp_sections_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(
            &dir,
            "[source]\nkind = \"imap\"\n[imap]\nhost = \"imap.example\"\nusername = \"u\"\nprocessed = \"move:Åtgärdat\"\nignored = \"flag\"\nidle_renew_secs = 1800\n[sink]\nkind = \"smtp\"\n[smtp]\nhost = \"smtp.example\"\nsecurity = \"plain\"\n",
        );
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("imap.password / imap.password_file"), "{all}");
        assert!(all.contains("imap.idle_renew_secs"), "{all}");
        assert!(
            all.contains("smtp.security: plain is allowed only to a loopback"),
            "{all}"
        );
        assert_eq!(err.problems.len(), 3, "{all}");

        let file = minimal(
            &dir,
            "[source]\nkind = \"imap\"\n[imap]\nhost = \"127.0.0.1\"\nport = 1143\nsecurity = \"plain\"\nusername = \"u\"\npassword = \"p\"\nprocessed = \"move:Åtgärdat\"\nignored = \"flag:$Ignorerad\"\n[sink]\nkind = \"smtp\"\n[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\n",
        );
        let s = Settings::load_with_env(Some(&file), []).unwrap();
        assert_eq!(s.imap.processed, AfterAction::Move("Åtgärdat".into()));
        assert_eq!(s.imap.ignored, AfterAction::Flag("$Ignorerad".into()));
        assert_eq!(s.imap.port(), 1143);
        assert_eq!(s.smtp.port(), 25);
        let bad = minimal(&dir, "[imap]\nprocessed = \"delete\"\n");
        assert!(Settings::load_with_env(Some(&bad), [])
            .unwrap_err()
            .to_string()
            .contains("move:FOLDER"));
    }

    #[test]
    fn ldap_settings_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(
            &dir,
            "[directory]\nkind = \"ldap\"\n[ldap]\nurl = \"ldaps://kiv.example\"\nplain = true\nbase_dn = \"\"\n[http]\nlisten = \"localhost\"\n",
        );
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        let all = err.problems.join("\n");
        for key in [
            "ldap.plain",
            "ldap.bind_dn",
            "ldap.password_file",
            "ldap.base_dn",
            "http.listen",
        ] {
            assert!(all.contains(key), "{key} missing in {all}");
        }
        let file = minimal(
            &dir,
            "[directory]\nkind = \"ldap\"\n[ldap]\nurl = \"ldap://127.0.0.1:389\"\nplain = true\nbind_dn = \"cn=x\"\npassword = \"secret\"\n",
        );
        let s = Settings::load_with_env(Some(&file), []).unwrap();
        assert_eq!(s.directory.kind, DirectoryKind::Ldap);
        assert!(!format!("{:?}", s.ldap).contains("secret"));
        assert_eq!(s.http.listen, "127.0.0.1:8080");
    }

    #[test]
    fn web_and_retention_have_defaults_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load_with_env(Some(&minimal(&dir, "")), []).unwrap();
        assert!(s.web.enabled);
        assert_eq!(s.retention.ignored_days, 30);
        assert_eq!(s.retention.rejected_days, 90);
        assert_eq!(s.retention.completed_days, 730);
        let file = minimal(
            &dir,
            "[web]\nlisten = \"localhost\"\nsession_hours = 0\n[retention]\nrejected_days = 0\nkeep = 1\n",
        );
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("web.listen: unknown key"), "{all}");
        assert!(all.contains("web.session_hours"), "{all}");
        assert!(all.contains("retention.rejected_days"), "{all}");
        assert!(all.contains("retention.keep: unknown key"), "{all}");
    }

    #[test]
    fn a_missing_file_and_a_bad_value_are_clear() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/x.toml")), []).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.toml"));
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "[log]\nformat = \"xml\"\n");
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }
}
