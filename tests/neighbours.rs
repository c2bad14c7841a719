//! Neighbours that answer, but wrongly (issue 24): a directory that holds no KIV or hides it,
//! an empty provider register, and a strict SMTP relay that refuses our EHLO name or one
//! recipient. Against a real OpenLDAP slapd and a real Postfix 3.7, started here; when one
//! is missing the test fails under CI and is skipped loudly elsewhere.

#[path = "ldap_support/mod.rs"]
mod ldap;
#[path = "support/postfix.rs"]
mod postfix;

use std::path::{Path, PathBuf};

use ldap::{cli, http_get, kiv_emails, wait_for, write_config, Daemon, Slapd, BASE_DN, BIND_DN};
use postfix::{Postfix, STRICT};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The email of the KIV test set whose person KIV does not hold.
fn not_in_kiv_email(dir: &Path) -> PathBuf {
    let (name, raw) = kiv_emails()
        .into_iter()
        .find(|(n, _)| n.contains("not-in-kiv"))
        .expect("the KIV test emails have one for person_not_in_kiv");
    let path = dir.join(format!("{name}.eml"));
    std::fs::write(&path, raw).unwrap();
    path
}

#[test]
fn an_empty_provider_register_fails_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), None, None, "");
    let (code, out, err) = cli(&config, &["check-config"]);
    assert_eq!(code, 0, "{out}{err}");

    let csv = dir.path().join("empty.csv");
    std::fs::write(&csv, "organisationsnummer,vardgivare,ansluten\n").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("{:?}", ldap::repo().join("fixtures/providers.csv")),
        &format!("{csv:?}"),
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = cli(&config, &["check-config"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("providers.csv") && err.contains("no provider is connected"),
        "{err}"
    );
    // Nor does anything run on it: no order is rejected provider_not_connected.
    let eml = not_in_kiv_email(dir.path());
    let (code, out, err) = cli(
        &config,
        &["process", "--dry-run", "--json", eml.to_str().unwrap()],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.is_empty(), "{out}");
}

/// `check` fails naming what is missing, and an order that KIV would reject as not in KIV
/// is not decided (`process` says KIV cannot be reached; the daemon would keep it waiting).
fn assert_kiv_not_proven(config: &Path, dir: &Path) {
    let (code, out, _) = cli(config, &["check"]);
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains(" ldap ")).unwrap();
    assert!(
        line.starts_with("FAIL")
            && line.contains("there is no care provider")
            && line.contains("care unit")
            && line.contains("person"),
        "{line}"
    );
    let eml = not_in_kiv_email(dir);
    let (code, out, err) = cli(
        config,
        &["process", "--dry-run", "--json", eml.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        !out.contains("person_not_in_kiv") && out.is_empty(),
        "{out}"
    );
    assert!(
        err.contains("KIV cannot be reached") && err.contains("canary"),
        "{err}"
    );
}

#[test]
fn a_base_dn_without_kiv_fails_check_and_never_rejects_on_absence() {
    let Some(slapd) = Slapd::start_with_fixture() else {
        return;
    };
    slapd.add_ldif(&format!(
        "dn: ou=Tom,{BASE_DN}\nobjectClass: organizationalUnit\nou: Tom\n"
    ));
    let dir = tempfile::tempdir().unwrap();

    // The control: the fixture's base DN holds KIV, and the same email is rejected.
    let config = write_config(dir.path(), Some(&slapd.url()), None, "");
    let (code, out, _) = cli(&config, &["check"]);
    let line = out.lines().find(|l| l.contains(" ldap ")).unwrap();
    assert!(
        line.starts_with("ok") && line.contains("holds KIV"),
        "{code}: {out}"
    );
    let eml = not_in_kiv_email(dir.path());
    let (code, out, err) = cli(
        &config,
        &["process", "--dry-run", "--json", eml.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("person_not_in_kiv"), "{out}");

    // A base DN that exists and is readable, but holds no KIV data.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("base_dn = \"{BASE_DN}\""),
        &format!("base_dn = \"ou=Tom,{BASE_DN}\""),
    );
    std::fs::write(&config, text).unwrap();
    assert_kiv_not_proven(&config, dir.path());
}

#[test]
fn kiv_hidden_by_an_acl_fails_check_and_never_rejects_on_absence() {
    // The service account may bind and read the base entry, and sees nothing below it.
    let acl = format!(
        "access to dn.exact=\"{BIND_DN}\" by anonymous auth by self read by * none\n\
         access to dn.base=\"{BASE_DN}\" by * read\n\
         access to * by * none\n"
    );
    let Some(slapd) = Slapd::start_with_fixture_and_acl(&acl) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&slapd.url()), None, "");
    assert_kiv_not_proven(&config, dir.path());
}

/// A configuration whose replies go through the relay on `port` (plain SMTP on loopback).
fn smtp_config(dir: &Path, port: u16) -> PathBuf {
    let config = write_config(dir, None, None, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[sink]\n", "[sink]\nkind = \"smtp\"\n");
    let text = format!(
        "{text}[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\ntimeout_secs = 10\n"
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn emails_in(dir: &Path, which: &[&str]) -> Vec<String> {
    kiv_emails()
        .into_iter()
        .filter(|(n, _)| which.iter().any(|w| n.contains(w)))
        .map(|(name, raw)| {
            let path = dir.join(format!("{name}.eml"));
            std::fs::write(&path, raw).unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn replies_pass_a_strict_relay_with_mime_version_and_the_office_domain() {
    let Some(relay) = Postfix::start(STRICT) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = smtp_config(dir.path(), relay.port);

    // `check` runs a transaction up to RCPT TO with the default EHLO name: a fully qualified one.
    let (_, out, _) = cli(&config, &["check"]);
    let line = out.lines().find(|l| l.contains(" smtp ")).unwrap();
    assert!(line.starts_with("ok"), "{out}");

    let emails = emails_in(
        dir.path(),
        &["01-order-ok", "02-order-not-in-kiv", "03-order-not-at-unit"],
    );
    assert_eq!(emails.len(), 3);
    let mut args = vec!["process", "--json"];
    args.extend(emails.iter().map(String::as_str));
    let (code, out, err) = cli(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_lines(&out).len(), 3, "{out}");
    let received = relay.wait_received(3);
    assert_eq!(received.len(), 3, "{}", relay.log());
    for raw in &received {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\n\n").next().unwrap();
        assert!(head.contains("\nMIME-Version: 1.0"), "{head}");
        let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
        let id = parsed.message_id().unwrap();
        assert!(id.ends_with("@vgregion.se"), "{id}");
        assert!(text.lines().all(|l| l.len() <= 998));
    }
    // Each connection said QUIT; none was dropped in the middle.
    let log = relay.log();
    assert!(log.contains("quit=1"), "{log}");
    for step in ["MAIL", "RCPT", "RSET", "EHLO"] {
        assert!(
            !log.contains(&format!("lost connection after {step}")),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_our_ehlo_name_is_a_sink_failure_not_failed_replies() {
    use tjid_intake::case::RenderedReply;
    use tjid_intake::case::{CaseContext, CaseKind, CheckedCase, Fields};
    use tjid_intake::outbox::{deliver_due, OutboxSettings};
    use tjid_intake::sink::{ReplySink, SmtpSettings, SmtpSink};
    use tjid_intake::store::{MailRecord, Recorded, Store};
    use tjid_intake::telemetry::{component_problem_now, component_state, Component};

    let Some(relay) = Postfix::start(STRICT) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let own = "tjansteid-intake@vgregion.se";
    let mut cases = Vec::new();
    for n in 0..3 {
        let mail = MailRecord {
            source_ref: format!("test:{n}"),
            message_id: Some(format!("<m{n}@example.se>")),
            content_hash: format!("h{n}"),
            received_at: now_ms(),
            email_date: None,
            sender: Some(format!("kansli{n}@example.se")),
            subject: "Blankett".into(),
            headers: String::new(),
            ignored: None,
            error: None,
            bounce: None,
        };
        let case = CheckedCase::new(
            CaseKind::Unknown,
            vec![],
            vec![],
            Fields::default(),
            CaseContext::default(),
        );
        let render = |_: &CheckedCase, case_id: &str, id: &str| {
            Some(RenderedReply {
                message_id: id.into(),
                sender: own.into(),
                recipient: format!("kansli{n}@example.se"),
                subject: "Re: Blankett".into(),
                raw: format!("From: {own}\r\nTo: kansli{n}@example.se\r\nSubject: Re: Blankett\r\nMIME-Version: 1.0\r\n\r\n{case_id}\r\n")
                    .into_bytes(),
            })
        };
        let Recorded::Processed { case_ids, .. } = store
            .record(&mail, &[case], &render, now_ms())
            .await
            .unwrap()
        else {
            panic!("not recorded")
        };
        cases.extend(case_ids);
    }
    let settings = |hello: Option<&str>| SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(relay.port),
        security: tjid_intake::net::Security::Plain,
        hello_name: hello.map(str::to_string),
        timeout_secs: 10,
        ..SmtpSettings::default()
    };
    let outbox = OutboxSettings {
        initial_backoff_secs: 0,
        max_backoff_secs: 0,
        give_up_after_hours: 1,
    };

    // EHLO vm: the relay answers 504 at RCPT, for every reply and for our own address.
    let smtp = SmtpSink::open(&settings(Some("vm")), own).unwrap();
    let err = smtp.test_connection().await.unwrap_err();
    assert!(
        err.contains("504") && err.contains("smtp.hello_name"),
        "{err}"
    );
    let sink = ReplySink::Smtp(smtp);
    let report = deliver_due(&store, &sink, &outbox, &Default::default())
        .await
        .unwrap();
    let mut errors = Vec::new();
    for case in &cases {
        let detail = store.case_detail(case).await.unwrap().unwrap();
        errors.push(detail.replies[0].last_error.clone());
    }
    assert_eq!(
        (report.sent, report.retried, report.failed),
        (0, 3, 0),
        "{errors:?}\n{}",
        relay.log()
    );
    for case in &cases {
        let detail = store.case_detail(case).await.unwrap().unwrap();
        let reply = &detail.replies[0];
        assert_eq!(reply.status, "pending", "{case}");
        let error = reply.last_error.as_deref().unwrap_or("");
        assert!(error.contains("refuses every mail from us"), "{error}");
    }
    assert!(matches!(
        component_state(Component::Sink),
        tjid_intake::telemetry::ComponentState::Failing { .. }
    ));
    assert!(component_problem_now(Component::Sink)
        .is_some_and(|p| p.contains("504") && p.contains("\"vm\"")));
    if let ReplySink::Smtp(smtp) = &sink {
        smtp.close().await;
    }

    // With the default, fully qualified name the same replies go out, each once.
    let sink = ReplySink::Smtp(SmtpSink::open(&settings(None), own).unwrap());
    let report = deliver_due(&store, &sink, &outbox, &Default::default())
        .await
        .unwrap();
    assert_eq!((report.sent, report.failed), (3, 0));
    if let ReplySink::Smtp(smtp) = &sink {
        smtp.close().await;
    }
    assert_eq!(relay.wait_received(3).len(), 3);
    let log = relay.log();
    // The refused transactions were reset and the connection kept: no drop after RCPT.
    assert!(log.contains("rset="), "{log}");
    assert!(!log.contains("lost connection after RCPT"), "{log}");
}

#[test]
fn a_failed_reply_can_be_resent_once_and_is_audited() {
    let Some(relay) = Postfix::start(STRICT) else {
        return;
    };
    relay.refuse(&["/^orjan\\.lindqvist@/"]);
    let dir = tempfile::tempdir().unwrap();
    let config = smtp_config(dir.path(), relay.port);
    let emails = emails_in(dir.path(), &["01-order-ok"]);
    let (code, out, err) = cli(&config, &["process", "--json", &emails[0]]);
    assert_eq!(code, 0, "{out}{err}");
    let case = json_lines(&out)[0]["cases"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let show = |config: &Path| {
        let (_, out, _) = cli(config, &["cases", "show", &case, "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let detail = show(&config);
    assert_eq!(detail["replies"][0]["status"], "failed", "{detail}");
    // The relay refused this recipient alone: a reply's own failure, not the sink's.
    assert!(
        detail["replies"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("554"),
        "{detail}"
    );
    assert_eq!(relay.received().len(), 0);

    // Staff fix the cause, and send it again.
    relay.refuse(&[]);
    let (code, out, err) = cli(&config, &["cases", "resend", &case, "--by", "anna"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(relay.wait_received(1).len(), 1, "{}", relay.log());
    let detail = show(&config);
    assert_eq!(detail["replies"][0]["status"], "sent", "{detail}");
    let audit = detail["audit"].as_array().unwrap();
    let resent: Vec<_> = audit
        .iter()
        .filter(|a| a["action"] == "reply_resent")
        .collect();
    assert_eq!(resent.len(), 1, "{detail}");
    assert_eq!(resent[0]["actor"], "anna");
    assert_eq!(resent[0]["before"], "failed");

    // Once: it is no longer failed, so there is nothing to resend.
    let (code, _, err) = cli(&config, &["cases", "resend", &case]);
    assert_eq!(code, 1);
    assert!(err.contains("has no failed reply"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(relay.received().len(), 1);
}

#[test]
fn without_its_canary_kiv_absence_waits_and_is_decided_as_soon_as_it_is_back() {
    let Some(slapd) = Slapd::start_with_fixture() else {
        return;
    };
    let canary = format!("ou=Canary,{BASE_DN}");
    let add_canary = || {
        slapd.add_ldif(&format!(
            "dn: {canary}\nobjectClass: organizationalUnit\nou: Canary\n"
        ))
    };
    add_canary();
    let dir = tempfile::tempdir().unwrap();
    let http = ldap::free_port();
    let config = write_config(
        dir.path(),
        Some(&slapd.url()),
        Some(http),
        &format!("canary_dn = \"{canary}\"\n"),
    );
    // Waiting emails would be tried again only after 30 s without the probe.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("retry_initial_ms = 200", "retry_initial_ms = 30000")
        .replace("retry_max_ms = 1000", "retry_max_ms = 60000");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config);
    wait_for(30, "the daemon to be ready", || {
        std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
    });

    // The canary is gone (an ACL change, an emptied subtree): an order whose person is not
    // in KIV is not rejected, it waits, and /readyz says why.
    slapd.delete(&canary);
    let maildir = dir.path().join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let (_, raw) = kiv_emails()
        .into_iter()
        .find(|(n, _)| n.starts_with("02-order-not-in-kiv"))
        .unwrap();
    std::fs::write(maildir.join("tmp/1.order"), &raw).unwrap();
    std::fs::rename(maildir.join("tmp/1.order"), maildir.join("new/1.order")).unwrap();
    let waiting = || {
        let (_, out, _) = cli(&config, &["cases", "waiting", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .map(|rows| rows.len())
            .unwrap_or(0)
    };
    wait_for(20, "the email to wait for KIV", || waiting() == 1);
    let replies = dir.path().join("replies");
    let count = || {
        std::fs::read_dir(&replies)
            .map(|d| d.flatten().filter(|e| e.path().is_file()).count())
            .unwrap_or(0)
    };
    assert_eq!(count(), 0, "{}", daemon.log_text());
    let (_, ready) = http_get(http, "/readyz");
    assert!(
        ready.contains("degraded") && ready.contains("does not show its canary"),
        "{ready}"
    );

    // Back: decided within a few seconds (the probe), not at the next back-off slot.
    std::thread::sleep(std::time::Duration::from_secs(1));
    add_canary();
    let back = std::time::Instant::now();
    wait_for(15, "the reply after KIV is back", || count() == 1);
    assert!(back.elapsed() < std::time::Duration::from_secs(12));
    assert_eq!(waiting(), 0);
    let reply = std::fs::read_dir(&replies)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_file())
        .unwrap()
        .path();
    let parsed = mail_parser::MessageParser::default()
        .parse(&std::fs::read(reply).unwrap())
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(
        parsed.contains("Registrera först personen i KIV"),
        "{parsed}"
    );
}
