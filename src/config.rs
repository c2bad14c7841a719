//! Typed settings. Layers: built-in defaults, then the TOML file (`config/default.toml`, or
//! `--config FILE`), then environment variables `TJID__SECTION__KEY`. Unknown keys are errors
//! and every problem is reported at once, each with its key.

use std::path::Path;

use serde::Deserialize;

// Settings owned by their components; gathered here.
pub use crate::casework::retention::RetentionSettings;
pub use crate::directory::ldap::LdapSettings;
pub use crate::directory::{DirectoryKind, DirectorySettings, KivSettings};
pub use crate::net::{is_loopback, Security};
pub use crate::ocr::OcrConfig;
pub use crate::outbox::{OutboxSettings, RateLimitSettings};
pub use crate::pipeline::{IntakeSettings, LimitSettings};
pub use crate::providers::ProviderSettings;
pub use crate::sink::{SinkKind, SinkSettings, SmtpSettings};
pub use crate::source::{AfterAction, ImapAuth, ImapSettings};
pub use crate::source::{InstanceSettings, SourceKind, SourceSettings};
pub use crate::store::{StoreKind, StoreSettings};
pub use crate::telemetry::{LogFormat, LogSettings};
pub use crate::web::settings::{HttpSettings, WebSettings};

/// The file used when `--config` is not given (relative to the current directory).
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

/// Keys an earlier version took, and why they went: named as such instead of "unknown".
const REMOVED_KEYS: &[(&str, &str)] = &[(
    "outbox.in_doubt_resend_after_secs",
    "an SMTP reply is recorded as handed over just before its end of data and never sent again by itself; one whose answer is missing is held for staff",
)];

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

impl Settings {
    /// Where raw emails are found again (the Maildir, kept copies of IMAP mail).
    pub fn originals(&self) -> crate::originals::Originals {
        let dir = &self.store.originals_dir;
        crate::originals::Originals::at(
            self.source.maildir.clone(),
            (!dir.as_os_str().is_empty()).then(|| dir.clone()),
        )
    }

    /// What the intake is built from.
    pub fn intake_parts(&self) -> crate::pipeline::IntakeParts {
        crate::pipeline::IntakeParts {
            intake: self.intake.clone(),
            limits: self.limits.clone(),
            directory: self.directory.clone(),
            kiv: self.kiv.clone(),
            ldap: self.ldap.clone(),
            providers: self.providers.clone(),
            ocr: self.ocr.settings(),
            ocr_workers: self.ocr.workers,
            child_memory_mb: self.ocr.child_memory_mb,
            originals: self.originals(),
        }
    }

    /// The IMAP settings and the largest email read, when mail comes from an IMAP server
    /// (retention erases expired mail there too).
    pub fn imap_source(&self) -> Option<(&ImapSettings, usize)> {
        (self.source.kind == SourceKind::Imap)
            .then_some((&self.imap, self.limits.max_message_bytes))
    }

    /// What the staff pages are built from.
    pub fn web_parts(&self) -> crate::web::WebParts {
        crate::web::WebParts {
            web: self.web.clone(),
            http: self.http.clone(),
            maildir: self.source.maildir.clone(),
            intake: self.intake_parts(),
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
            problems.push(match REMOVED_KEYS.iter().find(|(k, _)| *k == key) {
                Some((_, why)) => format!("{key}: no longer used ({why}); remove it"),
                None => format!("{key}: unknown key"),
            });
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
        if self.directory.kind == DirectoryKind::Ldif {
            p.extend(self.kiv.problems());
        }
        if self.directory.kind == DirectoryKind::Ldap {
            p.extend(self.ldap.problems());
        }
        p.extend(self.store.problems());
        p.extend(self.http.problems());
        p.extend(self.providers.problems());
        p.extend(self.intake.problems());
        p.extend(self.source.problems());
        p.extend(self.outbox.problems());
        p.extend(self.limits.problems());
        p.extend(self.ocr.problems());
        if self.source.kind == SourceKind::Imap {
            p.extend(self.imap.problems());
            p.extend(self.instance.problems());
        }
        if self.sink.kind == SinkKind::Smtp {
            p.extend(self.smtp.problems());
        }
        p.extend(self.rate_limit.problems());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.push(format!("log.level: {e}"));
        }
        p.extend(self.web.problems());
        p.extend(self.retention.problems());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

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
        let csv = write(
            dir,
            "p.csv",
            "organisationsnummer,vardgivare,ansluten\n5560160680,Exempel AB,2020-01-01\n",
        );
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
    fn a_removed_key_is_named_as_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = minimal(&dir, "[outbox]\nin_doubt_resend_after_secs = 900\n");
        let err = Settings::load_with_env(Some(&file), []).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
        assert!(
            err.problems[0].starts_with("outbox.in_doubt_resend_after_secs: no longer used ("),
            "{:?}",
            err.problems
        );
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
