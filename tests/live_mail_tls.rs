//! The connection paths of issue 4 against real servers: IMAP over implicit TLS and STARTTLS
//! with a private CA (and a wrong CA refused), Dovecot without MOVE and IDLE (COPY + \Deleted +
//! EXPUNGE, polling), XOAUTH2 with Dovecot's oauth2 passdb, and SMTP over STARTTLS, implicit TLS
//! and AUTH with a permanent 550 that staff and ops see; no silent fall-back to plain text.
//! Certificates are made for each test with the `openssl` command (a throwaway CA).

#[path = "support/mail_servers.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use support::{
    mails, wait_until, Daemon, DovecotOptions, ServerCert, SmtpOptions, TestCa, World, IGNORED,
    PROCESSED,
};
use tjid_intake::config::{ImapAuth, Security, Settings};
use tjid_intake::source::imap::ImapSource;
use tjid_intake::source::ConnectionStatus;

const NO_RATE_LIMIT: &str = "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n";

/// Both servers, with a certificate from a fresh throwaway CA for Dovecot (when `imap_tls`) and
/// for the SMTP server (when `smtp` asks for it). `None` when a tool is missing: the test is
/// skipped loudly, or fails under CI.
async fn tls_world(
    imap_tls: bool,
    smtp: impl FnOnce(ServerCert) -> SmtpOptions,
) -> Option<(World, TestCa)> {
    if !support::tls_servers_available() {
        return None;
    }
    support::init_logging();
    let temp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(temp.path(), "tjid-test-ca");
    let cert = ca.issue_server();
    let imap = DovecotOptions {
        tls: imap_tls.then(|| cert.clone()),
        ..DovecotOptions::default()
    };
    Some((World::start_in(temp, imap, smtp(cert)).await, ca))
}

/// Points the daemon's IMAP at a TLS port of the world's Dovecot, trusting `ca`.
fn imap_over(settings: &mut Settings, world: &World, security: Security, ca: &Path) {
    settings.imap.security = security;
    settings.imap.port = Some(match security {
        Security::Tls => world.dovecot.imaps_port,
        _ => world.dovecot.port,
    });
    settings.imap.ca_file = Some(ca.to_path_buf());
}

async fn append(world: &World, raw: &[u8]) {
    let mut client = world.dovecot.client().await;
    world.dovecot.append(&mut client, "INBOX", raw).await;
    let _ = client.logout().await;
}

/// Runs the command line with the world's configuration; returns (success, stdout + stderr).
fn cli(world: &World, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tjid-intake"))
        .arg("--config")
        .arg(world.config_path())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tjid-intake");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// One email in through the daemon and its reply out: the whole path works on this session.
async fn one_email_round_trip(world: &World, settings: Settings, n: usize) {
    let daemon = Daemon::start(settings).await;
    wait_until(20, "IMAP connected", || async {
        daemon.status.get().as_str() == "connected"
    })
    .await;
    let before = world.smtp.count();
    let (id, raw) = mails::notice(n, "Ja");
    append(world, &raw).await;
    wait_until(30, "the reply at the SMTP server", || async {
        world.smtp.count() > before
    })
    .await;
    wait_until(10, "the email moved", || async {
        world.dovecot.message_ids(PROCESSED).await.contains(&id)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_over_implicit_tls_and_starttls_with_a_private_ca() {
    let Some((world, ca)) = tls_world(true, |_| SmtpOptions::default()).await else {
        return;
    };
    // LOGIN on the first, AUTHENTICATE PLAIN on the second.
    for (n, security, auth) in [
        (1, Security::Tls, ImapAuth::Login),
        (2, Security::Starttls, ImapAuth::Plain),
    ] {
        let mut settings = world.settings("", NO_RATE_LIMIT);
        imap_over(&mut settings, &world, security, &ca.cert);
        settings.imap.auth = auth;
        one_email_round_trip(&world, settings, n).await;
    }
    // Dovecot says `TLS` on each login that had it: the two sessions of the daemon. (The
    // harness's own client logs in over plain IMAP on loopback.)
    // Dovecot's log process writes a little later.
    let tls_logins = || {
        world
            .dovecot
            .log()
            .lines()
            .filter(|l| l.contains("imap-login: Info: Login: ") && l.contains(", TLS, "))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tls_logins() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not two TLS logins:\n{}",
            world.dovecot.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused_with_a_clear_error() {
    let Some((world, _ca)) = tls_world(true, |_| SmtpOptions::default()).await else {
        return;
    };
    let wrong = TestCa::new(world.temp.path(), "some-other-ca");
    for security in [Security::Tls, Security::Starttls] {
        let mut settings = world.settings("", NO_RATE_LIMIT);
        imap_over(&mut settings, &world, security, &wrong.cert);
        let source = ImapSource::new(&settings.imap, 1 << 20, ConnectionStatus::default());
        let err = match source.connect().await {
            Ok(_) => panic!("{security:?}: a certificate from another CA was accepted"),
            Err(e) => e.to_string(),
        };
        eprintln!("{security:?}: {err}");
        assert!(
            err.contains("cannot set up TLS with IMAP server 127.0.0.1:")
                && err.contains("UnknownIssuer")
                && err.contains(&format!(
                    "not signed by a CA in imap.ca_file = {}",
                    wrong.cert.display()
                )),
            "{security:?}: unclear error: {err}"
        );
    }
    // `check` says the same in one line, and fails.
    let text = std::fs::read_to_string(world.config_path()).unwrap();
    let text = text.replace(
        "security = \"plain\"\nusername",
        &format!(
            "security = \"tls\"\nca_file = {:?}\nusername",
            wrong.cert.display().to_string()
        ),
    );
    let text = text.replace(
        &format!("port = {}\nsecurity = \"tls\"", world.dovecot.port),
        &format!("port = {}\nsecurity = \"tls\"", world.dovecot.imaps_port),
    );
    std::fs::write(world.config_path(), text).unwrap();
    let (ok, out) = cli(&world, &["check"]);
    assert!(!ok, "check passed with a wrong CA:\n{out}");
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("imap"))
        .unwrap_or_else(|| panic!("no imap line:\n{out}"));
    assert!(
        line.starts_with("FAIL") && line.contains("UnknownIssuer") && line.contains("ca_file"),
        "{line}"
    );
    assert!(!out.contains("stack backtrace"), "{out}");
}

/// Dovecot 2.3's capabilities after login, minus MOVE and IDLE (and UIDPLUS when asked).
fn capabilities_without_move_and_idle(uidplus: bool) -> String {
    let mut caps = vec![
        "IMAP4rev1",
        "SASL-IR",
        "LOGIN-REFERRALS",
        "ID",
        "ENABLE",
        "SORT",
        "THREAD=REFERENCES",
        "MULTIAPPEND",
        "UNSELECT",
        "CHILDREN",
        "NAMESPACE",
        "LIST-EXTENDED",
        "I18NLEVEL=1",
        "ESEARCH",
        "SEARCHRES",
        "WITHIN",
        "LIST-STATUS",
        "BINARY",
        "LITERAL+",
        "SPECIAL-USE",
    ];
    if uidplus {
        caps.push("UIDPLUS");
    }
    caps.join(" ")
}

/// The fallbacks: no MOVE → COPY + \Deleted + (UID) EXPUNGE; no IDLE → polling.
async fn fallbacks(uidplus: bool) {
    support::init_logging();
    let world = World::start_in(
        tempfile::tempdir().unwrap(),
        DovecotOptions {
            capability: Some(capabilities_without_move_and_idle(uidplus)),
            rawlog: true,
            ..DovecotOptions::default()
        },
        SmtpOptions::default(),
    )
    .await;
    let settings = world.settings("poll_interval_secs = 1", NO_RATE_LIMIT);
    let daemon = Daemon::start(settings).await;
    wait_until(20, "IMAP connected", || async {
        daemon.status.get().as_str() == "connected"
    })
    .await;
    // Arrives after the daemon looked: only polling can find it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (queued, raw) = mails::notice(1, "Ja");
    append(&world, &raw).await;
    let (ooo, raw) = mails::auto_reply(1);
    append(&world, &raw).await;
    wait_until(15, "the inbox emptied by polling", || async {
        world.dovecot.count("INBOX").await == 0
    })
    .await;
    assert_eq!(world.dovecot.message_ids(PROCESSED).await, vec![queued]);
    assert_eq!(world.dovecot.message_ids(IGNORED).await, vec![ooo]);
    wait_until(10, "the reply sent", || async { world.smtp.count() == 1 }).await;
    daemon.stop().await;

    let commands = world.dovecot.client_commands();
    let has = |prefix: &str| commands.iter().any(|c| c.starts_with(prefix));
    let all = commands.join("\n");
    assert!(has("CAPABILITY"), "{all}");
    assert!(!has("IDLE"), "IDLE used without the capability:\n{all}");
    assert!(!has("UID MOVE") && !has("MOVE"), "MOVE used:\n{all}");
    assert!(has("NOOP"), "no polling:\n{all}");
    assert!(has("UID COPY"), "{all}");
    assert!(has("UID STORE") && all.contains("\\DELETED"), "{all}");
    if uidplus {
        assert!(has("UID EXPUNGE"), "{all}");
        assert!(!has("EXPUNGE"), "a plain EXPUNGE with UIDPLUS:\n{all}");
    } else {
        assert!(has("EXPUNGE"), "{all}");
        assert!(!has("UID EXPUNGE"), "UID EXPUNGE without UIDPLUS:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_and_idle_messages_are_copied_expunged_by_uid_and_polled() {
    if !support::servers_available() {
        return;
    }
    fallbacks(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_uidplus_a_plain_expunge_follows_the_copy() {
    if !support::servers_available() {
        return;
    }
    fallbacks(false).await;
}

const RELAY_USER: &str = "relay";
const RELAY_PASSWORD: &str = "relä-lösen";

/// Sends the daemon's replies through the world's SMTP server with TLS, AUTH and the CA `ca`.
fn smtp_over(settings: &mut Settings, security: Security, ca: &Path, password: &str) {
    settings.smtp.security = security;
    settings.smtp.ca_file = Some(ca.to_path_buf());
    settings.smtp.username = Some(RELAY_USER.into());
    settings.smtp.password = Some(password.into());
}

fn smtp_options(cert: ServerCert, implicit_tls: bool, reject: &[&str]) -> SmtpOptions {
    SmtpOptions {
        tls: Some(cert),
        implicit_tls,
        auth: Some((RELAY_USER.into(), RELAY_PASSWORD.into())),
        reject: reject.iter().map(|r| r.to_string()).collect(),
    }
}

/// The reply of the newest case.
async fn newest_reply(daemon: &Daemon) -> Option<tjid_intake::store::ReplyRow> {
    let cases = daemon
        .store
        .list_cases(&tjid_intake::store::CaseFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let detail = daemon
        .store
        .case_detail(&cases.first()?.id)
        .await
        .unwrap()?;
    detail.replies.into_iter().next()
}

/// GET over HTTP/1.1 on loopback; the whole response.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the ops listener");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_refusal_marks_the_reply_failed_for_staff_and_ops() {
    let refused = "kim.berg@example.se";
    let Some((world, ca)) = tls_world(false, |cert| smtp_options(cert, false, &[refused])).await
    else {
        return;
    };
    let mut settings = world.settings("", NO_RATE_LIMIT);
    // STARTTLS is required by this server before MAIL, and AUTH after it.
    smtp_over(&mut settings, Security::Starttls, &ca.cert, RELAY_PASSWORD);
    let ops_port = support::free_port();
    settings.http.listen = format!("127.0.0.1:{ops_port}");
    let daemon = Daemon::start(settings).await;

    let (_, raw) = mails::no_form(1, &format!("Kim Berg <{refused}>"));
    append(&world, &raw).await;
    let (accepted_id, raw) = mails::notice(1, "Ja");
    append(&world, &raw).await;
    // The test server files a message just after it answers 250: wait for the file too.
    wait_until(30, "one reply sent and one failed", || async {
        let c = daemon.store.counts().await.unwrap();
        c.outbox_sent == 1 && c.outbox_failed == 1 && !world.smtp.received().is_empty()
    })
    .await;
    let received = world.smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("In-Reply-To").as_deref(),
        Some(accepted_id.as_str())
    );

    // The failed reply, on its case: failed at the first attempt (no retry of a 5xx).
    let cases = daemon
        .store
        .list_cases(&tjid_intake::store::CaseFilter {
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut failed = None;
    for c in &cases {
        let d = daemon.store.case_detail(&c.id).await.unwrap().unwrap();
        if d.replies.iter().any(|r| r.status == "failed") {
            failed = Some(d);
        }
    }
    let failed = failed.expect("a case with a failed reply");
    let reply = &failed.replies[0];
    assert_eq!(reply.recipient, refused);
    assert_eq!(reply.attempts, 1, "a 5xx is not retried");
    let error = reply.last_error.as_deref().unwrap_or("");
    assert!(error.contains("550"), "{error}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        world.smtp.count(),
        1,
        "the refused reply is not tried again"
    );

    // Staff: `cases show`.
    let (ok, out) = cli(&world, &["cases", "show", &failed.case.id]);
    assert!(ok, "{out}");
    assert!(out.contains("status failed"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("last error:") && l.contains("550")),
        "{out}"
    );
    // Ops: /metrics.
    let metrics = http_get(ops_port, "/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "tjid_outbox_failed 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "tjid_reply_deliveries_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_over_implicit_tls_with_auth_and_a_wrong_ca_or_password_refused() {
    let Some((world, ca)) = tls_world(false, |cert| smtp_options(cert, true, &[])).await else {
        return;
    };
    let wrong_ca = TestCa::new(world.temp.path(), "some-other-ca");
    let sink = |ca: &Path, password: &str| {
        let mut settings = world.settings("", NO_RATE_LIMIT);
        smtp_over(&mut settings, Security::Tls, ca, password);
        tjid_intake::sink::SmtpSink::open(&settings.smtp, &settings.intake.own_address)
            .expect("smtp sink")
    };
    let err = sink(&wrong_ca.cert, RELAY_PASSWORD)
        .test_connection()
        .await
        .expect_err("a certificate from another CA was accepted");
    assert!(
        err.contains("UnknownIssuer") && err.contains("not signed by a CA in smtp.ca_file"),
        "{err}"
    );
    let err = sink(&ca.cert, "fel")
        .test_connection()
        .await
        .expect_err("a wrong password was accepted");
    assert!(err.contains("535"), "{err}");
    sink(&ca.cert, RELAY_PASSWORD)
        .test_connection()
        .await
        .expect("TLS and AUTH with the right CA and password");

    // A refused AUTH is our relay account's problem, not the reply's: it waits, pending.
    let mut settings = world.settings("", NO_RATE_LIMIT);
    smtp_over(&mut settings, Security::Tls, &ca.cert, "fel");
    let daemon = Daemon::start(settings).await;
    let (_, raw) = mails::notice(1, "Ja");
    append(&world, &raw).await;
    wait_until(30, "a failed attempt recorded", || async {
        newest_reply(&daemon).await.is_some_and(|r| r.attempts > 0)
    })
    .await;
    let reply = newest_reply(&daemon).await.unwrap();
    assert!(
        reply.last_error.as_deref().unwrap_or("").contains("535"),
        "{reply:?}"
    );
    let c = daemon.store.counts().await.unwrap();
    assert_eq!(
        (c.outbox_pending, c.outbox_failed),
        (1, 0),
        "535 is not final"
    );
    daemon.stop().await;

    // A real reply over implicit TLS.
    let mut settings = world.settings("", NO_RATE_LIMIT);
    smtp_over(&mut settings, Security::Tls, &ca.cert, RELAY_PASSWORD);
    one_email_round_trip(&world, settings, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoauth2_with_a_token_from_a_file_or_a_command() {
    if !support::servers_available() {
        return;
    }
    support::init_logging();
    let temp = tempfile::tempdir().unwrap();
    let token = "ya29.test-token-7f3c";
    let tokens = support::TokenServer::start(temp.path(), token).await;
    let token_file = temp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let world = World::start_in(
        temp,
        DovecotOptions {
            oauth2_introspection_url: Some(tokens.url.clone()),
            ..DovecotOptions::default()
        },
        SmtpOptions::default(),
    )
    .await;
    let xoauth2 = |file: Option<&Path>, command: Option<String>| {
        let mut settings = world.settings("", NO_RATE_LIMIT);
        settings.imap.auth = ImapAuth::Xoauth2;
        settings.imap.password = None;
        settings.imap.oauth_token_file = file.map(Path::to_path_buf);
        settings.imap.oauth_token_command = command;
        settings
    };
    // A token the endpoint does not know is refused.
    let bad = world.dovecot.dir.join("bad-token");
    std::fs::write(&bad, "expired-token").unwrap();
    let settings = xoauth2(Some(&bad), None);
    let source = ImapSource::new(&settings.imap, 1 << 20, ConnectionStatus::default());
    let err = match source.connect().await {
        Ok(_) => panic!("an unknown token was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot log in"), "{err}");
    assert!(!err.contains("expired-token"), "the token leaked: {err}");
    // From a command.
    let settings = xoauth2(None, Some(format!("cat '{}'", token_file.display())));
    let source = ImapSource::new(&settings.imap, 1 << 20, ConnectionStatus::default());
    let mut session = source
        .connect()
        .await
        .expect("XOAUTH2 with a command's token");
    let _ = session.logout().await;
    // From a file, the daemon end to end.
    one_email_round_trip(&world, xoauth2(Some(&token_file), None), 1).await;
    assert!(
        world.dovecot.log().contains("method=XOAUTH2"),
        "{}",
        world.dovecot.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_silent_fall_back_to_plain_text() {
    if !support::tls_servers_available() {
        return;
    }
    support::init_logging();
    // Servers without TLS at all.
    let world = World::start().await;
    assert_eq!(
        tjid_intake::config::ImapSettings::default().security,
        Security::Tls,
        "plain IMAP only when configured"
    );
    let ca = TestCa::new(world.temp.path(), "unused-ca");
    for (security, expected) in [
        (Security::Tls, "cannot set up TLS with IMAP server"),
        (Security::Starttls, "cannot start TLS with IMAP server"),
    ] {
        let mut settings = world.settings("", NO_RATE_LIMIT);
        imap_over(&mut settings, &world, security, &ca.cert);
        settings.imap.port = Some(world.dovecot.port);
        let source = ImapSource::new(&settings.imap, 1 << 20, ConnectionStatus::default());
        match source.connect().await {
            Ok(_) => panic!("{security:?} fell back to plain text"),
            Err(e) => assert!(e.to_string().contains(expected), "{security:?}: {e}"),
        }
    }
    let mut settings = world.settings("", NO_RATE_LIMIT);
    smtp_over(&mut settings, Security::Starttls, &ca.cert, RELAY_PASSWORD);
    let err = tjid_intake::sink::SmtpSink::open(&settings.smtp, &settings.intake.own_address)
        .unwrap()
        .test_connection()
        .await
        .expect_err("SMTP without STARTTLS was accepted");
    assert!(err.contains("STARTTLS is not supported"), "{err}");
    assert_eq!(world.smtp.count(), 0);
}
