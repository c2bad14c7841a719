//! `tjid-intake check`: tries every configured connection and path, one line per result, so
//! that ops can tell at a glance what is wrong before (or while) the daemon runs.

use std::path::Path;
use std::time::Duration;

use crate::config::{DirectoryKind, Settings, SinkKind, SourceKind};

/// The result of one check.
#[derive(Debug, Clone)]
pub struct CheckLine {
    /// What was checked: `database`, `ldap`, `maildir`, …
    pub name: &'static str,
    /// What it found (`Ok`), or why it failed (`Err`), in one line.
    pub result: Result<String, String>,
}

impl CheckLine {
    fn new(name: &'static str, result: Result<String, String>) -> CheckLine {
        CheckLine { name, result }
    }

    /// `ok    database  …` / `FAIL  ldap      …`
    pub fn render(&self) -> String {
        match &self.result {
            Ok(what) => format!("ok    {:<10} {}", self.name, one_line(what)),
            Err(why) => format!("FAIL  {:<10} {}", self.name, one_line(why)),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// No single check may hang the command.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

async fn bounded<F>(name: &'static str, check: F) -> CheckLine
where
    F: std::future::Future<Output = Result<String, String>>,
{
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => CheckLine::new(name, result),
        Err(_) => CheckLine::new(
            name,
            Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        ),
    }
}

/// Runs every check that the configuration calls for, in a fixed order.
pub async fn run_checks(settings: &Settings) -> Vec<CheckLine> {
    let mut lines = vec![bounded("database", check_database(settings)).await];
    if settings.source.kind == SourceKind::Imap {
        lines.push(bounded("lease", check_lease(settings)).await);
    }
    lines.push(match settings.directory.kind {
        DirectoryKind::Ldif => bounded("kiv", async { check_snapshot(&settings.kiv.ldif) }).await,
        DirectoryKind::Ldap => bounded("ldap", check_ldap(settings)).await,
    });
    lines.push(
        bounded("providers", async {
            check_providers(&settings.providers.csv)
        })
        .await,
    );
    if settings.ocr.enabled {
        lines.push(CheckLine::new("ocr", check_ocr(&settings.ocr.lang)));
    }
    // Mail source and reply sink: one line each.
    lines.push(match settings.source.kind {
        SourceKind::Maildir => {
            bounded("maildir", async { check_maildir(&settings.source.maildir) }).await
        }
        SourceKind::Imap => bounded("imap", check_imap(settings)).await,
    });
    lines.push(match settings.sink.kind {
        SinkKind::File => bounded("sink", async { check_writable_dir(&settings.sink.dir) }).await,
        SinkKind::Smtp => bounded("smtp", check_smtp(settings)).await,
    });
    lines
}

/// Logs in and selects the configured folder.
async fn check_imap(settings: &Settings) -> Result<String, String> {
    use crate::source::imap::{encode_folder_name, ImapSource};
    let imap = &settings.imap;
    let source = ImapSource::new(
        imap,
        settings.limits.max_message_bytes,
        crate::source::ConnectionStatus::default(),
    );
    let mut session = source.connect().await.map_err(|e| e.to_string())?;
    let mailbox = session
        .select(encode_folder_name(&imap.folder))
        .await
        .map_err(|e| {
            format!(
                "logged in, but cannot select the folder {:?}: {e}",
                imap.folder
            )
        })?;
    let _ = session.logout().await;
    Ok(format!(
        "{}:{} as {}: folder {:?} holds {} messages",
        imap.host,
        imap.port(),
        imap.username,
        imap.folder,
        mailbox.exists
    ))
}

/// Opens a connection (EHLO, STARTTLS or TLS, authentication) and sends NOOP.
async fn check_smtp(settings: &Settings) -> Result<String, String> {
    let sink = crate::sink::SmtpSink::open(&settings.smtp, &settings.intake.own_address)
        .map_err(|e| format!("{e:#}"))?;
    sink.test_connection().await?;
    Ok(format!(
        "{}:{} answers",
        settings.smtp.host,
        settings.smtp.port()
    ))
}

async fn check_database(settings: &Settings) -> Result<String, String> {
    let store = crate::store::Store::open(&settings.store)
        .await
        .map_err(|e| e.to_string())?;
    let place = match settings.store.kind {
        crate::config::StoreKind::Sqlite => settings.store.sqlite.display().to_string(),
        crate::config::StoreKind::Postgres => {
            crate::store::postgres::redact_url(&settings.store.url)
        }
    };
    let version = store
        .server_version()
        .await
        .map_err(|e| format!("cannot read the database {place}: {e}"))?;
    let c = store
        .counts()
        .await
        .map_err(|e| format!("cannot read the database {place}: {e}"))?;
    Ok(format!(
        "{} {version} {place}: {} messages, {} cases, {} replies pending, {} waiting for KIV",
        store.kind(),
        c.messages,
        c.cases,
        c.outbox_pending,
        c.kiv_waiting
    ))
}

/// Who holds the IMAP folder's lease (reads the mailbox), and since when it was renewed.
async fn check_lease(settings: &Settings) -> Result<String, String> {
    let store = crate::store::Store::open(&settings.store)
        .await
        .map_err(|e| e.to_string())?;
    let name = crate::source::lease::lease_name(&settings.imap);
    let lease = store
        .lease_state(&name)
        .await
        .map_err(|e| format!("cannot read the lease {name}: {e}"))?;
    let now = chrono::Utc::now().timestamp_millis();
    let ttl_ms = settings.imap.lease_secs as i64 * 1000;
    Ok(match lease {
        None => format!("{name}: free (no instance reads the folder)"),
        Some(l) if l.expires_at <= now => format!(
            "{name}: free, last held by {}, ran out {} s ago",
            l.holder,
            (now - l.expires_at) / 1000
        ),
        // The holder renews it to now + lease_secs: its age is the time since that renewal.
        Some(l) => format!(
            "{name}: held by {}, renewed {} s ago, runs out in {} s{}",
            l.holder,
            (now - (l.expires_at - ttl_ms)).max(0) / 1000,
            (l.expires_at - now) / 1000,
            if l.holder == settings.instance.name {
                " (this instance's name)"
            } else {
                ""
            }
        ),
    })
}

/// Tesseract and its language model, for scanned forms.
fn check_ocr(lang: &str) -> Result<String, String> {
    if crate::ocr::available(lang) {
        Ok(format!("tesseract with the model {lang:?}"))
    } else {
        Err(format!(
            "tesseract or its model {lang:?} is missing (Debian: tesseract-ocr tesseract-ocr-{lang}): scanned forms cannot be read"
        ))
    }
}

fn check_snapshot(path: &Path) -> Result<String, String> {
    let kiv = crate::directory::KivSnapshot::load(path).map_err(|e| e.to_string())?;
    let st = kiv.stats();
    Ok(format!(
        "LDIF snapshot {}: {} persons, {} units, {} providers",
        path.display(),
        st.persons,
        st.units,
        st.providers
    ))
}

async fn check_ldap(settings: &Settings) -> Result<String, String> {
    let ldap = crate::directory::LdapDirectory::new(&settings.ldap).map_err(|e| e.to_string())?;
    let what = ldap.check_connection().await.map_err(|e| e.to_string())?;
    Ok(format!("{}: {what}", settings.ldap.url))
}

fn check_providers(path: &Path) -> Result<String, String> {
    let register = crate::providers::ProviderRegister::load(path).map_err(|e| e.to_string())?;
    let (now, later) = register.connected_on(chrono::Local::now().date_naive());
    let later = match later {
        0 => String::new(),
        n => format!(", {n} connected from a later date"),
    };
    Ok(format!(
        "{}: {now} connected providers{later}",
        path.display()
    ))
}

fn check_maildir(root: &Path) -> Result<String, String> {
    if !root.exists() {
        return Ok(format!(
            "{} does not exist yet; `run` creates it",
            root.display()
        ));
    }
    for sub in ["new", "cur", "tmp"] {
        if !root.join(sub).is_dir() {
            return Err(format!(
                "{} is not a Maildir: {sub}/ is missing",
                root.display()
            ));
        }
    }
    // Probe in tmp/ only: a file in new/ would be read as mail.
    check_writable_dir(&root.join("tmp"))?;
    let waiting = std::fs::read_dir(root.join("new"))
        .map(|d| d.count())
        .unwrap_or(0);
    Ok(format!("{}: {waiting} message(s) in new/", root.display()))
}

fn check_writable_dir(dir: &Path) -> Result<String, String> {
    if !dir.exists() {
        return Ok(format!(
            "{} does not exist yet; it is created when needed",
            dir.display()
        ));
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let probe = dir.join(format!(".tjid-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(format!("{} is writable", dir.display()))
}
