//! Test harness: a real OpenLDAP slapd on 127.0.0.1 with a free port and a temporary
//! directory, loaded from fixtures/kiv.ldif, stopped on Drop; plus the daemon as a child
//! process, and test emails built with the crate's own MIME and PDF writers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tjid_intake::forms::spec::FormKind;
use tjid_testkit::mime::{build, Body, MailSpec};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};

pub const BIND_DN: &str = "cn=tjid-intake,c=SE";
pub const BIND_PASSWORD: &str = "test-secret";
pub const BASE_DN: &str = "c=SE";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_binary(name: &str) -> Option<PathBuf> {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.is_file())
}

/// A running slapd. Stops (and its files go) on Drop.
pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    slapd: PathBuf,
    child: Option<Child>,
}

impl Slapd {
    /// Starts slapd with the KIV fixture loaded, or returns `None` (with a loud message) when
    /// slapd is not installed. Under CI (env CI set) a missing slapd fails the test instead.
    pub fn start_with_fixture() -> Option<Slapd> {
        Self::start_with_fixture_and_acl("")
    }

    /// As `start_with_fixture`, with `acl` (slapd.conf `access` lines) for the database: what
    /// the service account may see. The root DN loads the fixture whatever the ACL says.
    pub fn start_with_fixture_and_acl(acl: &str) -> Option<Slapd> {
        let (Some(slapd), Some(_)) = (find_binary("slapd"), find_binary("ldapadd")) else {
            if std::env::var_os("CI").is_some() {
                panic!("slapd/ldapadd not found: CI must install the Debian packages slapd and ldap-utils");
            }
            eprintln!("\n!!!!! SKIPPED: slapd or ldapadd is not installed (apt-get install slapd ldap-utils) !!!!!\n");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let schema = repo().join("tests/ldap/hsa.schema");
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include {schema}\n\
             pidfile {d}/slapd.pid\n\
             argsfile {d}/slapd.args\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{BASE_DN}\"\n\
             rootdn \"cn=admin,{BASE_DN}\"\n\
             rootpw admin-secret\n\
             directory {d}/db\n\
             index objectClass eq\n\
             index hsaIdentity,personalIdentityNumber eq\n\
             index ou eq,sub\n\
             {acl}\n",
            schema = schema.display(),
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
        let mut s = Slapd {
            dir,
            port: free_port(),
            slapd,
            child: None,
        };
        // A free port can be taken by a server of a test running beside this one before slapd
        // binds it: then slapd exits, and another port is tried.
        for attempt in 1..=3 {
            match s.try_start() {
                Ok(()) => break,
                Err(why) if attempt < 3 => {
                    eprintln!(
                        "slapd on port {} did not start ({why}); another port",
                        s.port
                    );
                    s.stop();
                    s.port = free_port();
                }
                Err(why) => panic!("{why}"),
            }
        }
        s.load_fixture();
        Some(s)
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts slapd (again) on the same port and database.
    pub fn start(&mut self) {
        if let Err(why) = self.try_start() {
            panic!("{why}");
        }
    }

    /// Starts slapd and waits until it answers a bind as its root DN: a port that accepts
    /// connections may belong to another server, so only an LDAP answer proves it is ours.
    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "slapd already runs");
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).unwrap();
        let child = Command::new(&self.slapd)
            .arg("-d")
            .arg("0")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
                return Err(format!(
                    "slapd did not start answering on {}:\n{log}",
                    self.port
                ));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether our slapd answers a simple bind as its root DN.
    fn answers(&self) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.url(), "-D"])
            .arg(format!("cn=admin,{BASE_DN}"))
            .args(["-w", "admin-secret"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Adds entries (LDIF) as the root DN.
    pub fn add_ldif(&self, ldif: &str) {
        let mut child = Command::new(find_binary("ldapadd").unwrap())
            .args(["-x", "-H", &self.url(), "-D"])
            .arg(format!("cn=admin,{BASE_DN}"))
            .args(["-w", "admin-secret"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ldapadd");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Deletes one (leaf) entry as the root DN.
    pub fn delete(&self, dn: &str) {
        let out = Command::new(find_binary("ldapdelete").expect("ldapdelete"))
            .args(["-x", "-H", &self.url(), "-D"])
            .arg(format!("cn=admin,{BASE_DN}"))
            .args(["-w", "admin-secret", dn])
            .output()
            .expect("run ldapdelete");
        assert!(
            out.status.success(),
            "ldapdelete failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The fixture as KIV holds it: the tree's root, the service account, and the snapshot's
    /// entries. Units and providers get the HSA auxiliary classes that real KIV entries carry
    /// (the snapshot leaves them out; the schema needs them for the HSA attributes).
    fn load_fixture(&self) {
        let fixture = std::fs::read_to_string(repo().join("fixtures/kiv.ldif")).unwrap();
        let mut ldif = format!(
            "dn: {BASE_DN}\nobjectClass: country\nc: SE\n\n\
             dn: {BIND_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
             cn: tjid-intake\nuserPassword: {BIND_PASSWORD}\n\n"
        );
        for line in fixture.lines() {
            ldif.push_str(line);
            ldif.push('\n');
            match line.trim().to_ascii_lowercase().as_str() {
                "objectclass: organization" => {
                    ldif.push_str("objectClass: hsaOrganizationExtension\n")
                }
                "objectclass: organizationalunit" => {
                    ldif.push_str("objectClass: hsaHealthCareUnitExtension\n")
                }
                _ => {}
            }
        }
        let mut child = Command::new(find_binary("ldapadd").unwrap())
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                &format!("cn=admin,{BASE_DN}"),
                "-w",
                "admin-secret",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ldapadd");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configuration file for a test: the fixture snapshot and register, and everything else
/// in `dir`. `directory` is `None` for the snapshot, or the LDAP URL.
pub fn write_config(
    dir: &Path,
    ldap_url: Option<&str>,
    http_port: Option<u16>,
    extra: &str,
) -> PathBuf {
    let r = repo();
    let mut text = format!(
        "[kiv]\nldif = {:?}\n[providers]\ncsv = {:?}\n[intake]\nown_address = \"tjansteid-intake@vgregion.se\"\n\
         require_authenticated_sender = false\nauthserv_id = \"mx.vgregion.se\"\n\
         [source]\nmaildir = {:?}\npoll_interval_ms = 50\n[store]\nsqlite = {:?}\n[sink]\ndir = {:?}\n\
         [outbox]\ninitial_backoff_secs = 1\nmax_backoff_secs = 2\n",
        r.join("fixtures/kiv.ldif"),
        r.join("fixtures/providers.csv"),
        dir.join("maildir"),
        dir.join("intake.db"),
        dir.join("replies"),
    );
    text.push_str(&format!(
        "[http]\nlisten = \"{}\"\n",
        http_port
            .map(|p| format!("127.0.0.1:{p}"))
            .unwrap_or_default()
    ));
    if let Some(url) = ldap_url {
        text.push_str(&format!(
            "[directory]\nkind = \"ldap\"\n[ldap]\nurl = \"{url}\"\nplain = true\nbind_dn = \"{BIND_DN}\"\n\
             password = \"{BIND_PASSWORD}\"\nbase_dn = \"{BASE_DN}\"\ntimeout_ms = 2000\ncache_ttl_secs = 0\n\
             retry_initial_ms = 200\nretry_max_ms = 1000\n"
        ));
    }
    text.push_str(extra);
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The daemon (`run`) as a child process; killed on Drop.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let log = config.with_file_name("daemon.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tjid-intake"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "tjid_intake=debug,info")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        Daemon { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI; returns (exit code, stdout, stderr).
pub fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tjid-intake"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run tjid-intake");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `GET path` over plain HTTP/1.1; returns (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the ops endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls `cond` every 50 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Swedish personnummer (10 digits + Luhn) in `YYYYMMDD-NNNC` form.
pub fn pnr(yyyymmdd: &str, nnn: &str) -> String {
    let ten = format!("{}{}", &yyyymmdd[2..], nnn);
    let sum: u32 = ten
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32 * if i % 2 == 0 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    format!("{yyyymmdd}-{nnn}{}", (10 - sum % 10) % 10)
}

const DATE: &str = "Wed, 18 Nov 2026 10:00:00 +0100";

fn order(changes: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut v = example_values(FormKind::Order);
    for (k, val) in changes {
        v.insert(k.to_string(), val.to_string());
    }
    v
}

fn dereg(changes: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut v = example_values(FormKind::Deregistration);
    for (k, val) in changes {
        if val.is_empty() {
            v.remove(*k);
        } else {
            v.insert(k.to_string(), val.to_string());
        }
    }
    v
}

fn mail_with(
    n: usize,
    from: &str,
    kind: FormKind,
    layout: Layout,
    values: &BTreeMap<String, String>,
) -> Vec<u8> {
    let pdf = render(&[FilledForm {
        kind,
        layout,
        values,
    }])
    .expect("render form");
    let spec = MailSpec::new(
        from,
        "Blankett eTjänstekort",
        &format!("<kiv-{n}@test.vgregion.se>"),
        DATE,
    )
    .attach_pdf("blankett.pdf", pdf);
    build(&spec)
}

/// Emails that exercise every KIV rule: found / not found persons and units, a person at
/// another unit, the manager check, name mismatches, units by name (case and spacing), a body
/// notice and an email without a form. Each is (name, raw).
pub fn kiv_emails() -> Vec<(String, Vec<u8>)> {
    use FormKind::{Deregistration as D, Order as O};
    let vc = "Örjan Lindqvist <orjan.lindqvist@vgregion.se>";
    let not_in_kiv = pnr("19711224", "123");
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, raw: Vec<u8>| out.push((name.to_string(), raw));
    add(
        "01-order-ok",
        mail_with(1, vc, O, Layout::Fillable, &order(&[])),
    );
    add(
        "02-order-not-in-kiv",
        mail_with(
            2,
            vc,
            O,
            Layout::SameLine,
            &order(&[("personnummer", &not_in_kiv)]),
        ),
    );
    add(
        "03-order-not-at-unit",
        mail_with(
            3,
            vc,
            O,
            Layout::Table,
            &order(&[("personnummer", "19900101-0017")]),
        ),
    );
    add(
        "04-order-unit-not-in-kiv",
        mail_with(
            4,
            vc,
            O,
            Layout::Fillable,
            &order(&[("vardenhet_hsaid", "SE2321000131-E000000000999")]),
        ),
    );
    add(
        "05-order-sender-not-manager",
        mail_with(
            5,
            "Bo Ek <bo.ek@vgregion.se>",
            O,
            Layout::Fillable,
            &order(&[]),
        ),
    );
    add(
        "06-order-name-mismatch",
        mail_with(
            6,
            vc,
            O,
            Layout::Fillable,
            &order(&[("fornamn", "Anna"), ("efternamn", "Astrom")]),
        ),
    );
    add(
        "07-order-other-provider",
        mail_with(
            7,
            "Lars Ek <LARS.EK@halsanvast.se>",
            O,
            Layout::Fillable,
            &order(&[
                ("vardgivare_namn", "Hälsan Väst AB"),
                ("vardgivare_orgnr", "556016-0680"),
                ("vardenhet_namn", "Hälsan Väst Mölndal"),
                ("vardenhet_hsaid", "se5560160680-e000000000301"),
                ("fornamn", "Sara"),
                ("efternamn", "Lind"),
                ("personnummer", "19900101-0017"),
            ]),
        ),
    );
    add(
        "08-order-no-unit-relation",
        mail_with(
            8,
            vc,
            O,
            Layout::Fillable,
            &order(&[
                ("personnummer", "19550505-6787"),
                ("fornamn", "Sven"),
                ("efternamn", "Gammal"),
            ]),
        ),
    );
    add(
        "09-dereg-ok",
        mail_with(9, vc, D, Layout::Fillable, &dereg(&[])),
    );
    add(
        "10-dereg-unit-by-name",
        mail_with(
            10,
            "Karin Berg <karin.berg@vgregion.se>",
            D,
            Layout::SameLine,
            &dereg(&[
                ("vardenhet_hsaid", ""),
                ("vardenhet_namn", "närhälsan  LERUM vårdcentral"),
                ("namn", "Bo Ek"),
                ("personnummer", "19820930-3455"),
            ]),
        ),
    );
    add(
        "11-dereg-unknown-unit-name",
        mail_with(
            11,
            vc,
            D,
            Layout::Fillable,
            &dereg(&[
                ("vardenhet_hsaid", ""),
                ("vardenhet_namn", "Vårdcentralen Påhittad"),
            ]),
        ),
    );
    add(
        "12-dereg-employment-gone",
        mail_with(
            12,
            vc,
            D,
            Layout::Fillable,
            &dereg(&[("personnummer", "19550505-6787"), ("namn", "Sven Gammal")]),
        ),
    );
    add(
        "13-dereg-not-in-kiv",
        mail_with(
            13,
            vc,
            D,
            Layout::Fillable,
            &dereg(&[("personnummer", &not_in_kiv)]),
        ),
    );
    let mut body = MailSpec::new(
        "Karin Berg <karin.berg@vgregion.se>",
        "Avregistrering",
        "<kiv-14@test.vgregion.se>",
        DATE,
    );
    body.body = Body::Plain(
        "Hej!\n\nAvregistrering av eTjänstekort\nKortinnehavarens namn: Bo Ek\nPersonnummer: 820930-3455\n\
         Kortnummer: 9752 2679 0010 0000 120\nVårdenhet: Närhälsan Lerum vårdcentral\nKlippt kort mottaget: Ja\n\
         Verksamhetschef: Karin Berg\nDatum: 2026-11-18\n\nHälsningar\nKarin\n"
            .into(),
    );
    add("14-dereg-body", build(&body));
    let none = MailSpec::new(vc, "Fråga", "<kiv-15@test.vgregion.se>", DATE);
    add("15-no-form", build(&none));
    out
}

/// The lead's golden emails, when they are in this checkout (fixtures/mail/*.eml).
pub fn golden_emails() -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("fixtures/mail");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}
