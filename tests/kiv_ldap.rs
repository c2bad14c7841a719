//! KIV over LDAP against a real OpenLDAP slapd loaded from fixtures/kiv.ldif, and the ops
//! endpoint and `check` command of the real binary. No mocks: when slapd is not installed the
//! LDAP tests skip loudly, and fail under CI.

#[path = "ldap_support/mod.rs"]
mod support;

use std::path::Path;

use support::*;
use tjid_intake::config::{LdapSettings, Settings};
use tjid_intake::directory::{Directory, KivLookup, LdapDirectory, SnapshotFile};
use tjid_intake::pipeline::Intake;

fn ldap_settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_string(),
        plain: true,
        bind_dn: BIND_DN.into(),
        password: BIND_PASSWORD.into(),
        base_dn: BASE_DN.into(),
        timeout_ms: 2000,
        cache_ttl_secs: 60,
        ..LdapSettings::default()
    }
}

/// Every person, unit and manager of the fixture, plus values KIV does not hold.
fn ask_everything(kiv: &dyn KivLookup) -> String {
    let pnrs = [
        "197001011233",
        "191212121212",
        "197506152342",
        "198209303455",
        "198001613291",
        "195505056787",
        "198811115677",
        "199001010017",
        "200212127898",
        "199912312460",
        "196503024561",
        "197112241238",
    ];
    let ids = [
        "SE2321000131-E000000000101",
        "se2321000131-e000000000102",
        "SE5560160680-E000000000301",
        "SE5566771233-E000000000001",
        "SE6503024561-E000000000001",
        "SE2321000131-P000000000201",
        "SE2321000131-P000000000301",
        "SE5560160680-P000000000401",
        "SE2321000131-E000000000999",
        "SE2321000131-E000000000001",
    ];
    let names = [
        "Vårdcentralen Ekmansgatan",
        "VÅRDCENTRALEN EKMANSGATAN",
        "vårdcentralenekmansgatan",
        "  Närhälsan   Lerum vårdcentral ",
        "Hälsan Väst Mölndal",
        "Tandläkare Karlsson",
        "Vårdcentralen Påhittad",
        "Vårdcentralen",
        "(*)",
    ];
    let persons: Vec<_> = pnrs.iter().map(|p| kiv.person_by_pnr(p).cloned()).collect();
    let by_id: Vec<_> = ids
        .iter()
        .map(|i| {
            (
                kiv.person_by_hsa_id(i).cloned(),
                kiv.unit_by_hsa_id(i).cloned(),
            )
        })
        .collect();
    let units: Vec<_> = names.iter().map(|n| kiv.unit_by_name(n).cloned()).collect();
    format!("{persons:#?}\n{by_id:#?}\n{units:#?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_lookups_answer_like_the_snapshot_and_cache() {
    let Some(mut slapd) = Slapd::start_with_fixture() else {
        return;
    };
    let snapshot =
        Directory::Snapshot(SnapshotFile::load(&repo().join("fixtures/kiv.ldif")).unwrap());
    let ldap = Directory::Ldap(LdapDirectory::new(&ldap_settings(&slapd.url())).unwrap());

    let expected = snapshot.run_check(ask_everything).await.unwrap();
    let got = ldap.run_check(ask_everything).await.expect("LDAP answers");
    assert_eq!(got, expected);
    // The fixture is really there: the answers are not all empty.
    assert!(
        got.contains("Anna-Karin") && got.contains("Närhälsan Lerum vårdcentral"),
        "{got}"
    );

    // Answers are cached for a short time: the same questions are answered without slapd,
    // and a new question fails instead of being answered "not found".
    slapd.stop();
    assert_eq!(ldap.run_check(ask_everything).await.unwrap(), expected);
    let err = ldap
        .run_check(|kiv| kiv.person_by_pnr("196001011236").is_some())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("LDAP server") || msg.contains("LDAP"), "{msg}");
    assert!(
        !msg.contains("196001011236"),
        "no personnummer in errors: {msg}"
    );
}

fn intake_with(dir: &Path, ldap_url: Option<&str>) -> Intake {
    let config = write_config(dir, ldap_url, None, "");
    let settings = Settings::load_with_env(Some(&config), []).unwrap();
    Intake::load(settings.intake_parts()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_ldap_give_identical_decisions() {
    let Some(slapd) = Slapd::start_with_fixture() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snap_dir = dir.path().join("snap");
    let ldap_dir = dir.path().join("ldap");
    std::fs::create_dir_all(&snap_dir).unwrap();
    std::fs::create_dir_all(&ldap_dir).unwrap();
    let snapshot = intake_with(&snap_dir, None);
    let ldap = intake_with(&ldap_dir, Some(&slapd.url()));
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();

    let golden = golden_emails();
    if golden.is_empty() {
        eprintln!("note: fixtures/mail has no golden emails in this checkout; comparing the KIV test emails only");
    }
    let emails: Vec<_> = kiv_emails().into_iter().chain(golden).collect();
    let mut codes = std::collections::BTreeSet::new();
    for (name, raw) in &emails {
        let a = snapshot.analyse(raw, today).await.unwrap();
        let b = ldap
            .analyse(raw, today)
            .await
            .unwrap_or_else(|e| panic!("{name}: LDAP failed: {e}"));
        assert_eq!(
            format!("{:?}", b.cases),
            format!("{:?}", a.cases),
            "{name}: cases differ"
        );
        assert_eq!((b.ignored, &b.error), (a.ignored, &a.error), "{name}");
        for c in &a.cases {
            codes.insert(format!("{}:{}", c.kind, c.decision));
            codes.extend(c.reasons.iter().map(|r| r.code.as_str().to_string()));
            codes.extend(c.warnings.iter().map(|w| w.code.as_str().to_string()));
        }
    }
    // The test emails reach every KIV rule, so the comparison means something.
    for code in [
        "order:queued",
        "person_not_in_kiv",
        "person_not_at_unit",
        "unit_not_in_kiv",
        "sender_not_manager",
        "name_mismatch",
        "kiv_employment_missing",
        "deregistration:queued",
        "no_form_found",
    ] {
        assert!(codes.contains(code), "no email gave {code}: {codes:?}");
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0)
}

fn deliver(maildir: &Path, emails: &[(String, Vec<u8>)]) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (i, (name, raw)) in emails.iter().enumerate() {
        let file = format!("17000000{i:02}.{name}.test");
        std::fs::write(maildir.join("tmp").join(&file), raw).unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&file),
            maildir.join("new").join(&file),
        )
        .unwrap();
    }
}

fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn json_rows(config: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let (code, out, err) = cli(config, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn ldap_outage_emails_wait_then_complete_once() {
    let Some(mut slapd) = Slapd::start_with_fixture() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), Some(&slapd.url()), Some(port), "");
    let maildir = dir.path().join("maildir");
    let replies = dir.path().join("replies");
    let emails: Vec<_> = kiv_emails().into_iter().take(6).collect();

    slapd.stop();
    let daemon = Daemon::start(&config);
    wait_for(30, "the ops endpoint", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    deliver(&maildir, &emails);

    // While LDAP is down: every email waits, visible to staff and in the metrics; none is
    // decided, acknowledged or answered.
    wait_for(30, "the emails to wait", || {
        json_rows(&config, &["cases", "waiting", "--json"]).len() == emails.len()
    });
    wait_for(30, "a retry", || {
        json_rows(&config, &["cases", "waiting", "--json"])
            .iter()
            .all(|r| r["attempts"].as_i64().unwrap_or(0) >= 2)
    });
    let (_, text, _) = cli(&config, &["cases", "list"]);
    assert!(
        text.contains(&format!("{} email(s) wait for KIV", emails.len())),
        "{text}"
    );
    assert!(json_rows(&config, &["cases", "list", "--json"]).is_empty());
    assert_eq!(files_in(&maildir.join("new")), emails.len());
    assert_eq!(files_in(&replies), 0);
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(&metrics, "tjid_ldap_waiting_emails", &[]),
        Some(emails.len() as f64),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tjid_ldap_up", &[]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        http_get(port, "/healthz").0,
        200,
        "an LDAP outage is not ill health"
    );

    // LDAP is back: every email completes, once, with one reply, as the snapshot decides.
    slapd.start();
    wait_for(60, "all emails to complete", || {
        files_in(&replies) == emails.len() && files_in(&maildir.join("cur")) == emails.len()
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        files_in(&replies),
        emails.len(),
        "exactly one reply per email"
    );
    assert_eq!(files_in(&maildir.join("new")), 0);
    assert!(json_rows(&config, &["cases", "waiting", "--json"]).is_empty());
    let cases = json_rows(&config, &["cases", "list", "--json"]);
    assert_eq!(cases.len(), emails.len(), "one case per email");

    let snap_dir = dir.path().join("snap");
    std::fs::create_dir_all(&snap_dir).unwrap();
    let snapshot = intake_with(&snap_dir, None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut expected: Vec<(String, String, Vec<String>)> = Vec::new();
    for (_, raw) in &emails {
        let a = rt
            .block_on(snapshot.analyse(raw, chrono::Utc::now().date_naive()))
            .unwrap();
        for c in a.cases {
            expected.push((
                c.kind.to_string(),
                c.decision.to_string(),
                c.reasons
                    .iter()
                    .map(|r| r.code.as_str().to_string())
                    .collect(),
            ));
        }
    }
    let mut got: Vec<(String, String, Vec<String>)> = cases
        .iter()
        .map(|c| {
            let reasons: Vec<serde_json::Value> =
                serde_json::from_str(c["reasons"].as_str().unwrap()).unwrap();
            (
                c["kind"].as_str().unwrap().to_string(),
                c["decision"].as_str().unwrap().to_string(),
                reasons
                    .iter()
                    .map(|r| r["code"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    let (_, metrics) = http_get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "tjid_ldap_waiting_emails", &[]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tjid_ldap_up", &[]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tjid_emails_total", &["outcome=\"processed\""]),
        Some(emails.len() as f64),
        "{metrics}"
    );
    let log = daemon.log_text();
    assert!(
        !log.contains("191212121212") && !log.contains("19121212-1212"),
        "no personnummer in the log"
    );
}

#[test]
fn ops_endpoint_serves_healthz_and_metrics_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), None, Some(port), "");
    let _daemon = Daemon::start(&config);
    wait_for(30, "the ops endpoint", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (status, body) = http_get(port, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let emails: Vec<_> = kiv_emails()
        .into_iter()
        .filter(|(n, _)| n.starts_with("01-") || n.starts_with("15-"))
        .collect();
    deliver(&dir.path().join("maildir"), &emails);
    wait_for(30, "two replies", || {
        files_in(&dir.path().join("replies")) == 2
    });

    let (status, m) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(&m, "tjid_emails_total", &["outcome=\"processed\""]),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tjid_cases_total",
            &["kind=\"order\"", "decision=\"queued\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tjid_cases_total",
            &["kind=\"unknown\"", "decision=\"rejected\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "tjid_case_reasons_total", &["code=\"no_form_found\""]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "tjid_email_processing_seconds_count", &[]),
        Some(2.0),
        "{m}"
    );
    assert!(metric(&m, "tjid_outbox_pending", &[]).is_some(), "{m}");
    assert!(metric(&m, "tjid_outbox_failed", &[]).is_some(), "{m}");
    assert_eq!(
        metric(&m, "tjid_ldap_waiting_emails", &[]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(http_get(port, "/nothing").0, 404);
}

#[test]
fn check_reports_each_connection_and_fails_clearly_without_ldap() {
    let Some(mut slapd) = Slapd::start_with_fixture() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Some(&slapd.url()), None, "");

    let (code, out, err) = cli(&config, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["database", "ldap", "providers", "ocr", "maildir", "sink"],
        "{out}"
    );
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{out}");
    assert!(out.contains("bound as cn=tjid-intake,c=SE"), "{out}");

    // A wrong password: the bind fails, and says so.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let bad_config = write_config(&bad, Some(&slapd.url()), None, "");
    let text = std::fs::read_to_string(&bad_config)
        .unwrap()
        .replace(BIND_PASSWORD, "wrong");
    std::fs::write(&bad_config, text).unwrap();
    let (code, out, _) = cli(&bad_config, &["check"]);
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains(" ldap ")).unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("cannot bind to LDAP server"),
        "{line}"
    );
    assert!(!out.contains("wrong"), "the password is not printed: {out}");

    // LDAP down: the LDAP line fails with a clear error, the others still report.
    slapd.stop();
    let (code, out, _) = cli(&config, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
    let line = out.lines().find(|l| l.contains(" ldap ")).unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("cannot connect to LDAP server"),
        "{line}"
    );
    assert!(
        out.lines()
            .find(|l| l.contains(" database "))
            .unwrap()
            .starts_with("ok"),
        "{out}"
    );

    // `process` does not decide while KIV is down: it stores nothing and says why.
    let eml = dir.path().join("order.eml");
    std::fs::write(&eml, &kiv_emails()[0].1).unwrap();
    let (code, out, err) = cli(&config, &["process", "--json", eml.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("KIV cannot be reached"), "{err}");
    assert!(json_rows(&config, &["cases", "list", "--json"]).is_empty());
    assert!(json_rows(&config, &["cases", "waiting", "--json"]).is_empty());
}
