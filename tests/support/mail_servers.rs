//! Real servers for the live-mail tests and the benchmark: Dovecot (IMAP) and aiosmtpd (an SMTP
//! server that keeps what it receives in a Maildir), on 127.0.0.1 with free ports and temporary
//! directories, stopped when dropped. Also the daemon itself, run in-process against them.
//!
//! When a server binary is missing the test fails if `CI` is set, and is skipped with a loud
//! message otherwise.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tjid_intake::config::Settings;
use tjid_intake::forms::spec::FormKind;
use tjid_intake::pipeline::Intake;
use tjid_intake::sink::{ReplySink, SmtpSink};
use tjid_intake::source::ConnectionStatus;
use tjid_intake::store::Store;
use tjid_testkit::mime::{build, MailSpec};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};
use tokio::net::TcpStream;

pub const DOVECOT: &str = "/usr/sbin/dovecot";
pub const PYTHON: &str = "/usr/bin/python3";
pub const OPENSSL: &str = "openssl";
pub const USER: &str = "tjansteid";
pub const PASSWORD: &str = "hemligt-lösen";
/// A sender that is the unit's verksamhetschef in fixtures/kiv.ldif.
pub const MANAGER: &str = "Örjan Lindqvist <orjan.lindqvist@vgregion.se>";
/// Keeps datum 2026-11-18 of the example forms inside the date window.
pub const DATE: &str = "Wed, 18 Nov 2026 10:00:00 +0100";

/// Whether the servers can be run here. Fails under CI, skips loudly otherwise.
pub fn servers_available() -> bool {
    let mut missing = Vec::new();
    if !Path::new(DOVECOT).is_file() {
        missing.push("dovecot (Debian package dovecot-imapd)");
    }
    let aiosmtpd = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !aiosmtpd {
        missing.push("aiosmtpd (Debian package python3-aiosmtpd)");
    }
    all_present(&missing)
}

/// Whether the servers and the `openssl` command (for throwaway certificates) are here.
pub fn tls_servers_available() -> bool {
    if !servers_available() {
        return false;
    }
    let openssl = Command::new(OPENSSL)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    all_present(if openssl {
        &[]
    } else {
        &["openssl (Debian package openssl)"]
    })
}

/// True when nothing is missing; otherwise fails under CI and skips loudly elsewhere.
fn all_present(missing: &[&str]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing test servers: {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set: install them, do not skip)");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not start listening on port {port}");
}

/// The process ids of `pid` and all its descendants (from /proc).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
            if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
                if let Some(ppid) = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                {
                    parents.push((p, ppid));
                }
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// Kills a server and every process it started at once (SIGKILL): a crash, and a quick stop.
fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let tree = process_tree(c.id());
        let mut cmd = Command::new("kill");
        cmd.arg("-KILL");
        for p in &tree {
            cmd.arg(p.to_string());
        }
        let _ = cmd.stderr(Stdio::null()).status();
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Runs a command to its end; panics with its error output when it fails.
fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway certificate authority (EC P-256, made with the `openssl` command).
pub struct TestCa {
    pub cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

/// A server certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(root: &Path, name: &str) -> TestCa {
        let dir = root.join(format!("ca-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("ca.cnf");
        std::fs::write(
            &config,
            format!(
                "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n[dn]\nCN = {name}\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
            ),
        )
        .unwrap();
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        run(Command::new(OPENSSL)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .arg("-config")
            .arg(&config)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        TestCa { cert, key, dir }
    }

    /// A certificate for 127.0.0.1 and localhost, signed by this CA.
    pub fn issue_server(&self) -> ServerCert {
        let d = &self.dir;
        std::fs::write(
            d.join("server.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n",
        )
        .unwrap();
        std::fs::write(
            d.join("server-ext.cnf"),
            "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )
        .unwrap();
        let (cert, key, csr) = (
            d.join("server.pem"),
            d.join("server.key"),
            d.join("server.csr"),
        );
        run(Command::new(OPENSSL)
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-config"])
            .arg(d.join("server.cnf"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new(OPENSSL)
            .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&self.cert)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-extfile")
            .arg(d.join("server-ext.cnf"))
            .arg("-out")
            .arg(&cert));
        ServerCert { cert, key }
    }
}

/// What a test Dovecot offers beyond plain IMAP on loopback.
#[derive(Debug, Clone, Default)]
pub struct DovecotOptions {
    /// TLS: STARTTLS on `port`, implicit TLS on `imaps_port`.
    pub tls: Option<ServerCert>,
    /// Replaces the CAPABILITY list after login (Dovecot 2.3 cannot remove single items).
    pub capability: Option<String>,
    /// Keeps the raw protocol of every IMAP session (see [`Dovecot::client_commands`]).
    pub rawlog: bool,
    /// XOAUTH2 and OAUTHBEARER instead of passwords, checked at this introspection URL.
    pub oauth2_introspection_url: Option<String>,
}

/// A token introspection endpoint (tests/support/token_introspection.py) that knows one token.
pub struct TokenServer {
    pub url: String,
    child: Option<Child>,
}

impl TokenServer {
    pub async fn start(root: &Path, token: &str) -> TokenServer {
        let script = root.join("token_introspection.py");
        std::fs::write(&script, include_str!("token_introspection.py")).unwrap();
        let port = free_port();
        let child = Command::new(PYTHON)
            .arg(&script)
            .arg(port.to_string())
            .arg(token)
            .arg(USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the token endpoint");
        wait_for_port(port, "the token endpoint").await;
        TokenServer {
            url: format!("http://127.0.0.1:{port}/introspect"),
            child: Some(child),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A Dovecot instance with one user and its Maildir.
pub struct Dovecot {
    pub dir: PathBuf,
    /// IMAP (offering STARTTLS when TLS is configured).
    pub port: u16,
    /// Implicit TLS; 0 without TLS.
    pub imaps_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Dovecot {
    pub async fn start(root: &Path) -> Dovecot {
        Self::start_with(root, DovecotOptions::default()).await
    }

    pub async fn start_with(root: &Path, options: DovecotOptions) -> Dovecot {
        let dir = root.join("dovecot");
        for sub in ["run", "state", "mail", "home", "rawlog"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // Dovecot serves the mail as uid 65534: it must reach and own the mail directories.
        let _ = Command::new("chmod")
            .args(["755", root.to_str().unwrap(), dir.to_str().unwrap()])
            .status();
        let _ = Command::new("chown")
            .args([
                "-R",
                "65534:65534",
                dir.join("mail").to_str().unwrap(),
                dir.join("home").to_str().unwrap(),
                dir.join("rawlog").to_str().unwrap(),
            ])
            .status();
        std::fs::write(
            dir.join("users"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .unwrap();
        let port = free_port();
        let d = dir.display();
        let mut extra = String::new();
        let imaps_port = match &options.tls {
            Some(tls) => {
                extra.push_str(&format!(
                    "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                    tls.cert.display(),
                    tls.key.display()
                ));
                free_port()
            }
            None => {
                extra.push_str("ssl = no\n");
                0
            }
        };
        if let Some(caps) = &options.capability {
            extra.push_str(&format!("imap_capability = {caps}\n"));
        }
        if options.rawlog {
            extra.push_str(&format!("rawlog_dir = {d}/rawlog\n"));
        }
        // Passwords always (the tests' own client logs in with one); tokens when asked. A
        // token fails the password file and goes on to the oauth2 passdb.
        let mut passdbs = format!(
            "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n"
        );
        let mut mechanisms = "plain login".to_string();
        if let Some(url) = &options.oauth2_introspection_url {
            std::fs::write(
                dir.join("oauth2.conf"),
                format!(
                    "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"
                ),
            )
            .unwrap();
            mechanisms.push_str(" xoauth2 oauthbearer");
            passdbs.push_str(&format!(
                "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {d}/oauth2.conf\n}}\n"
            ));
        }
        let config = dir.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
{extra}mail_location = maildir:{d}/mail/%u
mailbox_idle_check_interval = 1 secs
{passdbs}userdb {{
  driver = static
  args = uid=65534 gid=65534 home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"#
            ),
        )
        .unwrap();
        let mut d = Dovecot {
            dir,
            port,
            imaps_port,
            config,
            child: None,
        };
        d.spawn().await;
        d
    }

    /// Dovecot's own log (logins name the mechanism and say `TLS` when the session had it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Every command the clients sent (with `rawlog`), tags removed, upper-cased, in file order.
    pub fn client_commands(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rawlog"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "in"));
        files.sort();
        let mut commands = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for line in text.lines() {
                // "[time stamp] tag COMMAND args": drop the stamp and the tag.
                let mut words: Vec<&str> = line.split_whitespace().collect();
                if words
                    .first()
                    .is_some_and(|w| w.contains('.') && w.parse::<f64>().is_ok())
                {
                    words.remove(0);
                }
                if words.len() >= 2 {
                    commands.push(words[1..].join(" ").to_uppercase());
                }
            }
        }
        commands
    }

    async fn spawn(&mut self) {
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start dovecot");
        self.child = Some(child);
        wait_for_port(self.port, "dovecot").await;
        if self.imaps_port != 0 {
            wait_for_port(self.imaps_port, "dovecot (imaps)").await;
        }
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    pub async fn client(&self) -> async_imap::Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// Creates folders (UTF-8 names).
    pub async fn create_folders(&self, names: &[&str]) {
        let mut s = self.client().await;
        for name in names {
            let _ = s
                .create(tjid_intake::source::imap::encode_folder_name(name))
                .await;
        }
        let _ = s.logout().await;
    }

    pub async fn append(
        &self,
        session: &mut async_imap::Session<TcpStream>,
        folder: &str,
        raw: &[u8],
    ) {
        session
            .append(
                tjid_intake::source::imap::encode_folder_name(folder),
                None,
                None,
                raw,
            )
            .await
            .expect("APPEND");
    }

    /// The Message-IDs (with `<>`) of the messages in a folder (UTF-8 name).
    pub async fn message_ids(&self, folder: &str) -> Vec<String> {
        let mut s = self.client().await;
        let mailbox = s
            .examine(tjid_intake::source::imap::encode_folder_name(folder))
            .await
            .expect("EXAMINE");
        let mut ids = Vec::new();
        if mailbox.exists > 0 {
            let fetched: Vec<_> = s
                .fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                .await
                .expect("FETCH")
                .try_collect()
                .await
                .expect("FETCH");
            for f in &fetched {
                if let Some(h) = f.header() {
                    let text = String::from_utf8_lossy(h);
                    if let Some(v) = text.split_once(':').map(|(_, v)| v.trim().to_string()) {
                        ids.push(v);
                    }
                }
            }
        }
        let _ = s.logout().await;
        ids
    }

    /// How many messages of a folder are not marked \Seen.
    pub async fn unseen(&self, folder: &str) -> usize {
        let m = self.status(folder, "(UNSEEN)").await;
        m.unseen.expect("STATUS UNSEEN") as usize
    }

    pub async fn count(&self, folder: &str) -> usize {
        self.status(folder, "(MESSAGES)").await.exists as usize
    }

    async fn status(&self, folder: &str, items: &str) -> async_imap::types::Mailbox {
        let mut s = self.client().await;
        let m = s
            .status(tjid_intake::source::imap::encode_folder_name(folder), items)
            .await
            .expect("STATUS");
        let _ = s.logout().await;
        m
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a test SMTP server demands or refuses beyond plain SMTP on loopback.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// TLS with this certificate: STARTTLS (required before MAIL), or implicit TLS.
    pub tls: Option<ServerCert>,
    pub implicit_tls: bool,
    /// AUTH required with this user and password.
    pub auth: Option<(String, String)>,
    /// Recipients refused with `550 5.1.1`.
    pub reject: Vec<String>,
}

/// aiosmtpd (tests/support/smtp_server.py): every message accepted lands in a Maildir.
pub struct SmtpServer {
    pub maildir: PathBuf,
    pub port: u16,
    script: PathBuf,
    options: SmtpOptions,
    child: Option<Child>,
}

impl SmtpServer {
    pub async fn start(root: &Path) -> SmtpServer {
        Self::start_with(root, SmtpOptions::default()).await
    }

    pub async fn start_with(root: &Path, options: SmtpOptions) -> SmtpServer {
        let maildir = root.join("smtp-received");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let script = root.join("smtp_server.py");
        std::fs::write(&script, include_str!("smtp_server.py")).unwrap();
        let mut s = SmtpServer {
            maildir,
            port: free_port(),
            script,
            options,
            child: None,
        };
        s.spawn().await;
        s
    }

    pub async fn spawn(&mut self) {
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&self.script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--maildir")
            .arg(&self.maildir);
        let o = &self.options;
        if let Some(tls) = &o.tls {
            cmd.arg("--cert").arg(&tls.cert).arg("--key").arg(&tls.key);
            if o.implicit_tls {
                cmd.arg("--implicit-tls");
            }
        }
        if let Some((user, password)) = &o.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        for r in &o.reject {
            cmd.arg("--reject").arg(r);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start aiosmtpd");
        self.child = Some(child);
        wait_for_port(self.port, "aiosmtpd").await;
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    /// Every message received so far, oldest first (by file time).
    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd.flatten() {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    files.push((t, e.path()));
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(t, p)| std::fs::read(&p).ok().map(|raw| Received::new(raw, t)))
            .collect()
    }

    pub fn count(&self) -> usize {
        ["new", "cur"]
            .iter()
            .filter_map(|s| std::fs::read_dir(self.maildir.join(s)).ok())
            .map(|rd| rd.count())
            .sum()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as the SMTP server kept it.
pub struct Received {
    pub raw: Vec<u8>,
    pub at: std::time::SystemTime,
}

impl Received {
    fn new(raw: Vec<u8>, at: std::time::SystemTime) -> Received {
        Received { raw, at }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text
            .split("\n\n")
            .next()
            .unwrap_or("")
            .replace("\r\n", "\n");
        let mut value: Option<String> = None;
        for line in head.lines() {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                return value;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value
    }

    /// The decoded text body.
    pub fn text(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
            .unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Both servers, a work directory and a configuration for the daemon.
pub struct World {
    pub temp: tempfile::TempDir,
    pub dovecot: Dovecot,
    pub smtp: SmtpServer,
}

pub const PROCESSED: &str = "Åtgärdat";
pub const IGNORED: &str = "Ignorerat";
pub const QUARANTINED: &str = "Karantän";

impl World {
    pub async fn start() -> World {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            DovecotOptions::default(),
            SmtpOptions::default(),
        )
        .await
    }

    /// Both servers with options, in `temp` (which may already hold their certificates).
    pub async fn start_in(
        temp: tempfile::TempDir,
        imap: DovecotOptions,
        smtp: SmtpOptions,
    ) -> World {
        let dovecot = Dovecot::start_with(temp.path(), imap).await;
        let smtp = SmtpServer::start_with(temp.path(), smtp).await;
        World {
            temp,
            dovecot,
            smtp,
        }
    }

    /// The configuration file that [`World::settings`] wrote (for the command line).
    pub fn config_path(&self) -> PathBuf {
        self.temp.path().join("config.toml")
    }

    /// The daemon's configuration: IMAP in (plain on loopback, IDLE), SMTP out, SQLite.
    /// `extra` is appended (later keys of a TOML table must not repeat earlier ones: use the
    /// `[rate_limit]`, `[outbox]` and `[limits]` tables there, and `imap_extra` for `[imap]`).
    pub fn settings(&self, imap_extra: &str, extra: &str) -> Settings {
        let root = env!("CARGO_MANIFEST_DIR");
        let dir = self.temp.path();
        let text = format!(
            r#"[kiv]
ldif = "{root}/fixtures/kiv.ldif"
[providers]
csv = "{root}/fixtures/providers.csv"
[intake]
own_address = "tjansteid-intake@vgregion.se"
require_authenticated_sender = false
authserv_id = "mx.vgregion.se"
[source]
kind = "imap"
[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{USER}"
password = "{PASSWORD}"
folder = "INBOX"
processed = "move:{PROCESSED}"
ignored = "move:{IGNORED}"
quarantined = "move:{QUARANTINED}"
command_timeout_secs = 10
connect_timeout_secs = 5
reconnect_initial_ms = 200
reconnect_max_secs = 2
{imap_extra}
[store]
sqlite = "{db}"
originals_dir = "{originals}"
[sink]
kind = "smtp"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
timeout_secs = 5
[log]
level = "info"
[http]
# No ops listener: tests run in parallel and would fight over one port.
listen = ""
{extra}
"#,
            imap_port = self.dovecot.port,
            smtp_port = self.smtp.port,
            db = dir.join("intake.db").display(),
            originals = dir.join("originals").display(),
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load_with_env(Some(&path), []).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The daemon, running in-process until stopped.
pub struct Daemon {
    pub store: Store,
    pub status: ConnectionStatus,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    pub async fn start(settings: Settings) -> Daemon {
        tjid_intake::net::tls::install_default_provider();
        let store = Store::open_sqlite(&settings.store.sqlite)
            .await
            .expect("store");
        let sink = ReplySink::Smtp(
            SmtpSink::open(&settings.smtp, &settings.intake.own_address).expect("smtp sink"),
        );
        Self::start_with(settings, store, sink).await
    }

    pub async fn start_with(settings: Settings, store: Store, sink: ReplySink) -> Daemon {
        let intake = Arc::new(Intake::load(settings.intake_parts()).expect("intake"));
        let status = ConnectionStatus::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tjid_intake::app::daemon::run_until(
            settings,
            intake,
            store.clone(),
            sink,
            status.clone(),
            async {
                let _ = rx.await;
            },
        ));
        Daemon {
            store,
            status,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

/// Waits until `cond` holds, or fails the test with `what`.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The test emails.
pub mod mails {
    use super::*;

    fn pdf(
        kind: FormKind,
        layout: Layout,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Vec<u8> {
        render(&[FilledForm {
            kind,
            layout,
            values,
        }])
        .expect("render a form")
    }

    /// An order that is queued: complete, from the unit's manager.
    pub fn order(n: usize) -> (String, Vec<u8>) {
        let id = format!("<order-{n}@vgregion.se>");
        let spec = MailSpec::new(
            MANAGER,
            &format!("Beställning av eTjänstekort {n}"),
            &id,
            DATE,
        )
        .attach_pdf(
            "bestallning.pdf",
            pdf(
                FormKind::Order,
                Layout::SameLine,
                &example_values(FormKind::Order),
            ),
        );
        (id, build(&spec))
    }

    /// An order that is rejected: the mobile number is missing.
    pub fn incomplete_order(n: usize) -> (String, Vec<u8>) {
        let mut values = example_values(FormKind::Order);
        values.remove("mobil");
        let id = format!("<incomplete-{n}@vgregion.se>");
        let spec = MailSpec::new(MANAGER, &format!("Beställning {n}"), &id, DATE).attach_pdf(
            "bestallning.pdf",
            pdf(FormKind::Order, Layout::Fillable, &values),
        );
        (id, build(&spec))
    }

    pub fn deregistration(n: usize) -> (String, Vec<u8>) {
        let id = format!("<dereg-{n}@vgregion.se>");
        let spec = MailSpec::new(MANAGER, &format!("Avregistrering {n}"), &id, DATE).attach_pdf(
            "avregistrering.pdf",
            pdf(
                FormKind::Deregistration,
                Layout::Table,
                &example_values(FormKind::Deregistration),
            ),
        );
        (id, build(&spec))
    }

    /// A deregistration notice written in the body (SPEC §2.3): queued with `Ja`, rejected
    /// (cut_card_not_confirmed) with `Nej`. Needs no PDF reader.
    pub fn notice(n: usize, cut_card: &str) -> (String, Vec<u8>) {
        let id = format!("<notice-{n}@vgregion.se>");
        let mut spec = MailSpec::new(MANAGER, &format!("Avregistrering {n}"), &id, DATE);
        spec.body = tjid_testkit::mime::Body::Plain(format!(
            "Hej!\n\nAvregistrering av eTjänstekort\n\nKortinnehavarens namn: Anna-Karin Åström\nPersonnummer: 19121212-1212\nKortnummer: 9752 2679 0010 0000 120\nVårdenhet: Vårdcentralen Ekmansgatan\nVårdenhetens HSA-id: SE2321000131-E000000000101\nKlippt kort mottaget: {cut_card}\nVerksamhetschef: Örjan Lindqvist\nDatum: 2026-11-18\n\nMed vänlig hälsning\nÖrjan Lindqvist\n"
        ));
        (id, build(&spec))
    }

    /// An order written in the body with no form attached: signed_form_required.
    pub fn order_in_body(n: usize) -> (String, Vec<u8>) {
        let id = format!("<bodyorder-{n}@vgregion.se>");
        let mut spec = MailSpec::new(MANAGER, &format!("Beställning {n}"), &id, DATE);
        spec.body = tjid_testkit::mime::Body::Plain(
            "Beställning av eTjänstekort\n\nVårdgivare: Västra Götalandsregionen\nFörnamn: Anna-Karin\nEfternamn: Åström\nMobiltelefon: 070-123 45 67\n".into(),
        );
        (id, build(&spec))
    }

    /// No attachment at all: one `unknown` case, no_form_found.
    pub fn no_form(n: usize, from: &str) -> (String, Vec<u8>) {
        let id = format!("<noform-{n}@example.se>");
        let spec = MailSpec::new(from, &format!("Fråga {n}"), &id, DATE);
        (id, build(&spec))
    }

    /// An out-of-office answer: ignored (auto_reply), no reply.
    pub fn auto_reply(n: usize) -> (String, Vec<u8>) {
        let id = format!("<ooo-{n}@vgregion.se>");
        let mut spec = MailSpec::new(MANAGER, "Autosvar: Frånvaro", &id, DATE);
        spec.headers
            .push(("Auto-Submitted".into(), "auto-replied".into()));
        (id, build(&spec))
    }

    /// A message above `bytes` in size.
    pub fn large(n: usize, bytes: usize) -> (String, Vec<u8>) {
        let id = format!("<large-{n}@vgregion.se>");
        let filler: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8).collect();
        let spec = MailSpec::new(MANAGER, "Stor bilaga", &id, DATE).attach_pdf("stor.pdf", filler);
        (id, build(&spec))
    }

    /// A delivery report about one of our replies, quoting its headers.
    pub fn bounce_for(reply_message_id: &str, case_id: &str) -> (String, Vec<u8>) {
        let id = "<dsn-1@mx.example.se>".to_string();
        let raw = format!(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.se>\r\nTo: tjansteid-intake@vgregion.se\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {DATE}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.se\r\n\r\nFinal-Recipient: rfc822; orjan.lindqvist@vgregion.se\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: tjansteid-intake@vgregion.se\r\nMessage-ID: {reply_message_id}\r\nX-TjanstID-Case: {case_id}\r\n\r\n--b1--\r\n"
        );
        (id, raw.into_bytes())
    }

    /// An order whose sender is spoofed: the trusted (topmost) header of our MX says dmarc=fail,
    /// and a forged one further down claims dmarc=pass.
    pub fn forged_order(n: usize) -> (String, Vec<u8>) {
        let (id, raw) = notice(1000 + n, "Ja");
        let headers = "Authentication-Results: mx.vgregion.se; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail (p=none) header.from=vgregion.se\r\nAuthentication-Results: mx.vgregion.se; spf=pass; dkim=pass; dmarc=pass header.from=vgregion.se\r\n";
        let mut out = headers.as_bytes().to_vec();
        out.extend_from_slice(&raw);
        (id, out)
    }

    /// The same order with a genuine topmost dmarc=pass.
    pub fn authenticated_order(n: usize) -> (String, Vec<u8>) {
        let (id, raw) = notice(2000 + n, "Ja");
        let mut out = b"Authentication-Results: mx.vgregion.se; spf=pass smtp.mailfrom=vgregion.se; dkim=pass; dmarc=pass header.from=vgregion.se\r\n".to_vec();
        out.extend_from_slice(&raw);
        (id, out)
    }
}
