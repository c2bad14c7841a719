//! Typed settings. Layers: built-in defaults, then the TOML file (`config/default.toml`, or
//! `--config FILE`), then environment variables `TJID__SECTION__KEY`. Unknown keys are errors
//! and every problem is reported at once, each with its key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file used when `--config` is not given (relative to the current directory).
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub kiv: KivSettings,
    pub providers: ProviderSettings,
    pub intake: IntakeSettings,
    pub source: SourceSettings,
    pub store: StoreSettings,
    pub sink: SinkSettings,
    pub outbox: OutboxSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KivSettings {
    /// KIV snapshot in LDIF (the embedded default directory).
    pub ldif: PathBuf,
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
pub enum StoreKind {
    Sqlite,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    pub kind: StoreKind,
    pub sqlite: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    File,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `tjid_intake=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kiv: KivSettings::default(),
            providers: ProviderSettings::default(),
            intake: IntakeSettings::default(),
            source: SourceSettings::default(),
            store: StoreSettings::default(),
            sink: SinkSettings::default(),
            outbox: OutboxSettings::default(),
            limits: LimitSettings::default(),
            log: LogSettings::default(),
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

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: StoreKind::Sqlite,
            sqlite: "var/intake.db".into(),
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
            processing_timeout_secs: 60,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
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
        if !self.kiv.ldif.is_file() {
            p.push(format!(
                "kiv.ldif: no such file: {}",
                self.kiv.ldif.display()
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
        if self.limits.processing_timeout_secs == 0 {
            p.push("limits.processing_timeout_secs: must be at least 1".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.push(format!("log.level: {e}"));
        }
        p
    }
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
    fn a_missing_file_and_a_bad_value_are_clear() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/x.toml")), []).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.toml"));
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "[log]\nformat = \"xml\"\n");
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }
}
