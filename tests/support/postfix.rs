//! A strict SMTP relay for tests: a throwaway Postfix 3.7 instance (its own config, queue and
//! data directories in a temporary directory, its smtpd on 127.0.0.1 with a free port) that
//! keeps every message it accepts in one Maildir and relays nothing outside. Stopped on Drop.
//!
//! Postfix must be started as root and under a pseudo-tty (`script -qc`), or it fails
//! silently (see STACK-NOTES). When it is missing (or we are not root) the test fails under CI
//! and is skipped loudly elsewhere.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POSTFIX: &str = "/usr/sbin/postfix";

/// The restrictions of a strict relay: a short EHLO name gets 504 (at RCPT, as Postfix does by
/// default), the SMTP-smuggling checks are on for loopback clients too.
pub const STRICT: &str = "smtpd_helo_required = yes\n\
     smtpd_recipient_restrictions = reject_non_fqdn_helo_hostname, check_recipient_access regexp:$config_directory/refused, permit_mynetworks, reject\n\
     smtpd_forbid_bare_newline = yes\n\
     smtpd_forbid_bare_newline_exclusions =\n";

pub struct Postfix {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    /// Starts Postfix with `main_cf` added to its base configuration, or `None` (after a loud
    /// message; a panic under CI) when Postfix cannot be run here.
    pub fn start(main_cf: &str) -> Option<Postfix> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let missing = if !Path::new(POSTFIX).is_file() {
            Some("postfix is not installed (scripts/setup-test-deps.sh installs it)")
        } else if !root {
            Some("postfix must be started as root")
        } else {
            None
        };
        if let Some(why) = missing {
            if std::env::var_os("CI").is_some() {
                panic!("{why} (CI is set: install it, do not skip)");
            }
            eprintln!("\n!!!!!!!! SKIPPED: {why} !!!!!!!!\n");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // Postfix's own processes (user postfix, the delivery agent as 65534) go through it.
        run("chmod", &["755", &d.display().to_string()]);
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run("chown", &["postfix", &d.join("data").display().to_string()]);
        run("chown", &["65534", &d.join("mail").display().to_string()]);
        let port = free_port();
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             meta_directory = /etc/postfix\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             myhostname = relay.test.example\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             maillog_file_prefixes = {d}\n\
             maillog_file = {d}/maillog\n\
             alias_maps =\n\
             alias_database =\n\
             virtual_mailbox_domains = regexp:{d}/conf/domains\n\
             virtual_mailbox_maps = regexp:{d}/conf/mailbox\n\
             virtual_mailbox_base = {d}/mail\n\
             virtual_uid_maps = static:65534\n\
             virtual_gid_maps = static:65534\n\
             default_transport = error:no delivery outside the test\n\
             relay_transport = error:no delivery outside the test\n\
             {main_cf}",
            d = d.display()
        );
        std::fs::write(d.join("conf/main.cf"), main).unwrap();
        std::fs::write(d.join("conf/domains"), "/./ OK\n").unwrap();
        std::fs::write(d.join("conf/mailbox"), "/./ catchall/\n").unwrap();
        std::fs::write(d.join("conf/refused"), "").unwrap();
        // Debian's master.cf with no chroot and the smtpd listener on our port.
        let master = std::fs::read_to_string("/etc/postfix/master.cf").expect("master.cf");
        let mut out = String::new();
        for line in master.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with('#') || line.starts_with([' ', '\t']) || fields.len() < 8 {
                out.push_str(line);
            } else {
                let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                if fields[0] == "smtp" && fields[1] == "inet" {
                    fields[0] = format!("127.0.0.1:{port}");
                }
                fields[4] = "n".into();
                out.push_str(&fields.join(" "));
            }
            out.push('\n');
        }
        std::fs::write(d.join("conf/master.cf"), out).unwrap();
        let p = Postfix { dir, port };
        p.postfix("start");
        p.wait_for_greeting();
        Some(p)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    fn postfix(&self, action: &str) {
        let status = Command::new("script")
            .arg("-qc")
            .arg(format!("{POSTFIX} -c {} {action}", self.conf().display()))
            .arg("/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run postfix");
        assert!(
            status.success() || action == "stop",
            "postfix {action} failed:\n{}",
            self.log()
        );
    }

    fn wait_for_greeting(&self) {
        use std::io::BufRead;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut line = String::new();
                let _ = std::io::BufReader::new(&s).read_line(&mut line);
                if line.starts_with("220 ") && line.contains("Postfix") {
                    // QUIT and its answer: the probe leaves no "lost connection" line.
                    let mut reader = std::io::BufReader::new(&s);
                    let _ = std::io::Write::write_all(&mut &s, b"QUIT\r\n");
                    let _ = reader.read_line(&mut line);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("postfix did not greet on {}:\n{}", self.port, self.log());
    }

    /// Recipients (regexp) refused with 554 at RCPT from now on (`postfix reload`).
    pub fn refuse(&self, regexps: &[&str]) {
        let text: String = regexps.iter().map(|r| format!("{r} REJECT\n")).collect();
        std::fs::write(self.conf().join("refused"), text).unwrap();
        self.postfix("reload");
        // The smtpd processes started before the reload finish their connection first.
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// The relay's log (`maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Every message delivered so far, as stored.
    pub fn received(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.dir.path().join("mail/catchall").join(sub)) {
                files.extend(rd.flatten().map(|e| e.path()));
            }
        }
        files.sort();
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Waits until `n` messages are delivered (Postfix queues, then delivers).
    pub fn wait_received(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.postfix("stop");
    }
}

fn run(cmd: &str, args: &[&str]) {
    let ok = Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{cmd} {args:?} failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
