//! The commands staff and ops use: process (stored), cases list/show, forms write,
//! check-config; and what a reply looks like.

mod support;

use support::{sample_mail, Installation};

fn run(inst: &Installation, args: &[&str]) -> (bool, String, String) {
    let out = inst.command().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn process_stores_cases_and_writes_threaded_masked_swedish_replies() {
    let inst = Installation::new("");
    let dir = inst.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.eml"), sample_mail(0)).unwrap(); // valid order → queued
    std::fs::write(dir.join("b.eml"), sample_mail(2)).unwrap(); // mobile missing → rejected
    let (ok, stdout, stderr) = run(&inst, &["process", "--json", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let rejected = lines[1]["cases"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lines[1]["cases"][0]["decision"], "rejected");

    // The rejection queue and the case.
    let (ok, list, _) = run(&inst, &["cases", "list", "--decision", "rejected"]);
    assert!(ok);
    assert!(
        list.contains(&rejected) && list.contains("missing_field"),
        "{list}"
    );
    assert!(!list.contains(
        &lines[0]["cases"][0]["case_id"]
            .as_str()
            .unwrap()
            .to_string()
    ));
    let (ok, show, _) = run(&inst, &["cases", "show", &rejected]);
    assert!(ok);
    for needle in [
        "missing_field mobil",
        "Message-ID: <sample-2@test.tjid>",
        "status sent",
        "Mobiltelefon",
        "Audit trail",
        "created",
    ] {
        assert!(show.contains(needle), "missing {needle:?} in:\n{show}");
    }
    let (ok, _, stderr) = run(&inst, &["cases", "show", "TJID-1999-000001"]);
    assert!(!ok && stderr.contains("no case"));

    // The reply file itself.
    let reply = std::fs::read(inst.path("outbox").join(format!("{rejected}-1.eml"))).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&reply).unwrap();
    assert_eq!(parsed.subject(), Some("Re: Blankett 2"));
    assert_eq!(parsed.in_reply_to().as_text(), Some("sample-2@test.tjid"));
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("orjan.lindqvist@vgregion.se")
    );
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("tjansteid-intake@vgregion.se")
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains(&rejected), "{text}");
    assert!(
        text.contains("Fältet ”Mobiltelefon” är inte ifyllt"),
        "{text}"
    );
    assert!(text.contains("19121212-XXXX"), "{text}");
    assert!(
        !String::from_utf8_lossy(&reply).contains("1212-1212"),
        "full personnummer in reply"
    );
    assert!(!text.contains("1212-1212"));
    assert!(text.contains("nytt e-postmeddelande"), "{text}");

    let queued_id = lines[0]["cases"][0]["case_id"].as_str().unwrap();
    let queued = std::fs::read(inst.path("outbox").join(format!("{queued_id}-1.eml"))).unwrap();
    let text = mail_parser::MessageParser::default()
        .parse(&queued)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    for needle in [
        "Telia",
        "3–5 veckor",
        "hemadress",
        "legitimation",
        queued_id,
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }

    // Processing the same file again: the Message-ID makes it a duplicate, with no new reply.
    let (ok, stdout, _) = run(
        &inst,
        &["process", "--json", dir.join("a.eml").to_str().unwrap()],
    );
    assert!(ok);
    assert!(
        stdout.contains("\"ignored_reason\":\"duplicate\""),
        "{stdout}"
    );
    assert_eq!(inst.count("outbox"), 2);
}

#[test]
fn dry_run_stores_and_sends_nothing() {
    let inst = Installation::new("");
    let file = inst.path("a.eml");
    std::fs::write(&file, sample_mail(0)).unwrap();
    let (ok, stdout, _) = run(
        &inst,
        &[
            "process",
            "--dry-run",
            "--json",
            file.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1].contains("duplicate"),
        "duplicates are found within the run: {}",
        lines[1]
    );
    assert!(!inst.path("intake.db").exists());
    assert_eq!(inst.count("outbox"), 0);
}

#[test]
fn bad_configuration_and_input_give_clear_errors() {
    let inst = Installation::new(
        "[log]\nformt = \"json\"\n[outbox]\ngive_up_after_hour = 1\ninitial_backoff_secs = 0\n",
    );
    let (ok, _, stderr) = run(&inst, &["check-config"]);
    assert!(!ok);
    assert!(stderr.contains("log.formt: unknown key"), "{stderr}");
    assert!(
        stderr.contains("outbox.give_up_after_hour: unknown key"),
        "{stderr}"
    );
    assert!(stderr.contains("outbox.initial_backoff_secs"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    let inst = Installation::new("[outbox]\nmax_backoff_secs = \"soon\"\n");
    let (ok, _, stderr) = run(&inst, &["check-config"]);
    assert!(!ok && stderr.contains("max_backoff_secs"), "{stderr}");

    let inst = Installation::new("");
    let (ok, stdout, _) = run(&inst, &["check-config"]);
    assert!(ok, "{stdout}");
    let (ok, _, stderr) = run(&inst, &["process", "--json", "/nonexistent/mail.eml"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/mail.eml"), "{stderr}");

    let out = std::process::Command::new(support::BIN)
        .env("TJID__STORE__KIND", "oracle")
        .args(["--config", inst.config.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("oracle"));
}

#[test]
fn forms_write_gives_fillable_forms_with_the_spec_field_names() {
    let inst = Installation::new("");
    let dir = inst.path("forms");
    let (ok, _, stderr) = run(&inst, &["forms", "write", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    for kind in tjid_intake::forms::spec::FormKind::ALL {
        let bytes = std::fs::read(dir.join(format!("{}.pdf", kind.form_id()))).unwrap();
        let doc = tjid_intake::pdf::read_pdf(&bytes, &Default::default()).unwrap();
        let names: Vec<&str> = doc.fields.iter().map(|f| f.name.as_str()).collect();
        for spec in kind.fields() {
            assert!(
                names.contains(&spec.key),
                "{} lacks field {}",
                kind.form_id(),
                spec.key
            );
        }
        let text: String = doc.pages[0]
            .words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains(&kind.title().split(' ').next().unwrap().to_string()),
            "{text}"
        );
    }
}

#[path = "support/held.rs"]
mod held;

/// SPEC §4.4 from the command line: a held case has no reply; `cases verify` with a wrong key
/// names the form's keys; with the corrected value and `--confirm` the case is decided and
/// answered; a second confirmation is refused.
#[tokio::test]
async fn cases_verify_corrects_and_confirms_a_held_case() {
    let inst = Installation::new("");
    let store = tjid_intake::store::Store::open_sqlite(&inst.path("intake.db"))
        .await
        .unwrap();
    let h = held::record_held_scan(&inst.config, &store, &inst.path("in"), held::SCAN).await;
    let id = h.case_id.as_str();

    let (ok, show, _) = run(&inst, &["cases", "show", id]);
    assert!(ok);
    assert!(show.contains("state held"), "{show}");
    assert!(
        show.contains(&format!("Held for verification: {}", h.field)),
        "{show}"
    );
    assert_eq!(inst.count("outbox"), 0);

    let (ok, _, stderr) = run(
        &inst,
        &["cases", "verify", id, "--set", "epsot=x", "--confirm"],
    );
    assert!(!ok);
    assert!(
        stderr.contains("epsot") && stderr.contains("epost") && stderr.contains("mobil"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&inst, &["cases", "verify", id, "--set", "epost"]);
    assert!(!ok && stderr.contains("key=value"), "{stderr}");

    let set = format!("{}={}", h.field, h.right);
    let (ok, stdout, stderr) = run(
        &inst,
        &[
            "cases",
            "verify",
            id,
            "--set",
            &set,
            "--confirm",
            "--by",
            "anna",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("held -> queued") && stdout.contains("decision queued"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("reply queued: {id}-1")),
        "{stdout}"
    );
    assert_eq!(inst.count("outbox"), 1, "the reply went out");

    let (ok, show, _) = run(&inst, &["cases", "show", id]);
    assert!(ok);
    assert!(
        show.contains("field_corrected") && show.contains(&h.read),
        "{show}"
    );
    assert!(
        show.contains("verified") && show.contains("state queued"),
        "{show}"
    );

    // Answered now: confirming again is refused (its fields may still be corrected).
    let (ok, _, stderr) = run(&inst, &["cases", "verify", id, "--set", &set, "--confirm"]);
    assert!(!ok);
    assert!(stderr.contains("redan besvarat"), "{stderr}");
    assert_eq!(inst.count("outbox"), 1);
}

/// SPEC §2.2 and §4.4 from the command line: an unsigned scanned order is held on
/// `underskrift` with no reply; `cases verify --set underskrift=kanske` is refused in Swedish
/// and changes nothing; `underskrift=ja` with `--confirm` (staff see the signature on the
/// page) queues it, the receipt goes out, and the audit shows who corrected what.
#[test]
fn cases_verify_sets_the_signature_of_a_held_unsigned_scan() {
    let inst = Installation::new("");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("fixtures/scans/scan_order_unsigned.eml");
    let (ok, stdout, stderr) = run(&inst, &["process", "--json", fixture.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let case = &v["cases"][0];
    assert_eq!(case["decision"], "rejected", "{stdout}");
    assert_eq!(case["reasons"][0]["code"], "signature_missing", "{stdout}");
    assert_eq!(case["reasons"][0]["field"], "underskrift", "{stdout}");
    let id = case["case_id"].as_str().unwrap().to_string();
    let id = id.as_str();
    let (ok, show, _) = run(&inst, &["cases", "show", id]);
    assert!(ok);
    assert!(show.contains("state held"), "{show}");
    assert!(
        show.contains("Held for verification: underskrift"),
        "{show}"
    );
    assert_eq!(inst.count("outbox"), 0, "a held case is not answered");

    // Neither yes nor no: refused, in Swedish, and nothing changes.
    let (ok, stdout, stderr) = run(
        &inst,
        &[
            "cases",
            "verify",
            id,
            "--set",
            "underskrift=kanske",
            "--confirm",
        ],
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains(
            "Underskriften anges som ”ja” (underskriven) eller ”nej” (saknas), inte ”kanske”."
        ),
        "{stderr}"
    );
    let (_, show, _) = run(&inst, &["cases", "show", id]);
    assert!(show.contains("state held"), "{show}");
    assert!(!show.contains("field_corrected"), "{show}");
    assert_eq!(inst.count("outbox"), 0);

    // Signed after all: checked again, queued, and the receipt goes out.
    let (ok, stdout, stderr) = run(
        &inst,
        &[
            "cases",
            "verify",
            id,
            "--set",
            "underskrift=ja",
            "--confirm",
            "--by",
            "anna",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("held -> queued")
            && stdout.contains("decision queued")
            && stdout.contains("corrected [underskrift]"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("reply queued: {id}-1")),
        "{stdout}"
    );
    assert!(!stdout.contains("signature_missing"), "{stdout}");
    assert_eq!(inst.count("outbox"), 1, "the receipt went out");
    let receipt = std::fs::read(inst.path("outbox").join(format!("{id}-1.eml"))).unwrap();
    let text = mail_parser::MessageParser::default()
        .parse(&receipt)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(text.contains("Telia") && text.contains(id), "{text}");
    assert!(!text.contains("underskriven"), "{text}");

    let (ok, show, _) = run(&inst, &["cases", "show", id]);
    assert!(ok);
    assert!(show.contains("state queued"), "{show}");
    assert!(show.contains("Reasons: none"), "{show}");
    let fix = show
        .lines()
        .find(|l| l.contains("field_corrected"))
        .unwrap_or_else(|| panic!("no correction in the audit:\n{show}"));
    assert!(
        fix.contains("anna")
            && fix.contains("saknas -> underskriven")
            && fix.contains("underskrift"),
        "{fix}"
    );
    assert!(
        show.lines()
            .any(|l| l.contains("verified") && l.contains("held -> queued")),
        "{show}"
    );
}

/// `providers …` (issue 22): the register is seeded from the CSV on first use, an import is
/// checked row by row (a bad row is named by its line and nothing is imported), a dry run
/// changes nothing, a second import changes nothing, and a disconnection decides the next
/// email dated after it.
#[test]
fn providers_import_add_disconnect_and_the_next_decision() {
    let inst = Installation::new("");
    let (ok, list, err) = run(&inst, &["providers", "list"]);
    assert!(ok, "{err}");
    assert!(
        list.contains("232100-0131\tVästra Götalandsregionen\tansluten"),
        "{list}"
    );
    let seeded = list.lines().count();
    assert!(seeded >= 4, "{list}");

    let csv = inst.path("register.csv");
    std::fs::write(
        &csv,
        "organisationsnummer,vardgivare,ansluten\n\
         559123-4561,Tandvården i Mölndal AB,2026-01-01\n\
         556016-0681,Felaktig kontrollsiffra AB,2026-01-01\n",
    )
    .unwrap();
    let (ok, _, err) = run(&inst, &["providers", "import", csv.to_str().unwrap()]);
    assert!(!ok, "a bad row refuses the file");
    assert!(
        err.contains("line 3") && err.contains("nothing was imported"),
        "{err}"
    );
    assert!(!err.contains("556016"), "no value in the error: {err}");
    let (_, list, _) = run(&inst, &["providers", "list"]);
    assert_eq!(list.lines().count(), seeded, "nothing half-imported");

    std::fs::write(
        &csv,
        "organisationsnummer,vardgivare,ansluten\n559123-4561,Tandvården i Mölndal AB,2026-01-01\n",
    )
    .unwrap();
    let (ok, out, err) = run(
        &inst,
        &["providers", "import", "--dry-run", csv.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("would add: 5591234561") && out.contains("dry run"),
        "{out}"
    );
    let (_, list, _) = run(&inst, &["providers", "list"]);
    assert_eq!(list.lines().count(), seeded, "a dry run changes nothing");
    let (ok, out, _) = run(&inst, &["providers", "import", csv.to_str().unwrap()]);
    assert!(
        ok && out.contains("1 added, 0 renamed, 0 unchanged"),
        "{out}"
    );
    let (ok, out, _) = run(&inst, &["providers", "import", csv.to_str().unwrap()]);
    assert!(
        ok && out.contains("0 added, 0 renamed, 1 unchanged"),
        "{out}"
    );

    let (ok, _, err) = run(
        &inst,
        &[
            "providers",
            "add",
            "556016-0681",
            "--name",
            "X",
            "--connected",
            "2026-01-01",
            "--comment",
            "test",
        ],
    );
    assert!(!ok && err.contains("not valid"), "{err}");
    let (ok, _, err) = run(
        &inst,
        &[
            "providers",
            "add",
            "556000-1116",
            "--name",
            "Nya Vården AB",
            "--connected",
            "2026-12-01",
            "--kansli",
            "Kansliet",
            "--comment",
            "ansökan vidarebefordrad",
        ],
    );
    assert!(ok, "{err}");
    let (_, export, _) = run(&inst, &["providers", "export"]);
    assert!(
        export.starts_with("organisationsnummer,vardgivare,ansluten\n"),
        "{export}"
    );
    assert!(
        export.contains("556000-1116,Nya Vården AB,2026-12-01"),
        "{export}"
    );

    // The sample order's provider disconnected before the email's date (2026-11-18).
    let (ok, _, err) = run(
        &inst,
        &[
            "providers",
            "disconnect",
            "232100-0131",
            "--from",
            "2026-11-01",
            "--comment",
            "avtalet upphör",
        ],
    );
    assert!(ok, "{err}");
    let mail = inst.path("a.eml");
    std::fs::write(&mail, sample_mail(0)).unwrap();
    let (ok, out, err) = run(&inst, &["process", "--json", mail.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("provider_not_connected"), "{out}");
    // A dry run reads the CSV register, as before (SPEC §3.2).
    let (ok, out, err) = run(
        &inst,
        &["process", "--dry-run", "--json", mail.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("provider_not_connected"), "{out}");
    // Connected again before its last end: refused; from the email's date: decided connected.
    let reconnect = |from: &str| {
        run(
            &inst,
            &[
                "providers",
                "reconnect",
                "232100-0131",
                "--from",
                from,
                "--comment",
                "nytt avtal",
            ],
        )
    };
    let (ok, _, err) = reconnect("2026-10-01");
    assert!(!ok && err.contains("nothing changed"), "{err}");
    let (ok, _, err) = reconnect("2026-11-15");
    assert!(ok, "{err}");
    let mail = inst.path("b.eml");
    std::fs::write(&mail, sample_mail(5)).unwrap();
    let (ok, out, err) = run(&inst, &["process", "--json", mail.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(!out.contains("provider_not_connected"), "{out}");
    let (_, listed, _) = run(&inst, &["providers", "list", "--search", "232100"]);
    assert!(
        listed.contains("2019-01-01–2026-11-01, 2026-11-15–"),
        "{listed}"
    );
}

/// `open_order_exists` (issue 22, SPEC §4.3): a second order for the same person at the same
/// unit while the first is open is flagged (and the case page links the first); once the
/// first card is handed out, a replacement order is not.
#[test]
fn a_second_open_order_for_one_person_is_flagged_and_a_replacement_after_hand_out_is_not() {
    let inst = Installation::new("");
    let warned = |i: usize| -> (String, bool) {
        let mail = inst.path(&format!("{i}.eml"));
        std::fs::write(&mail, sample_mail(i)).unwrap();
        let (ok, out, err) = run(&inst, &["process", "--json", mail.to_str().unwrap()]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let case = &v["cases"][0];
        assert_eq!(case["decision"], "queued", "{out}");
        let flagged = case["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "open_order_exists" && w["field"] == "personnummer");
        (case["case_id"].as_str().unwrap().to_string(), flagged)
    };
    let (first, flagged) = warned(0);
    assert!(!flagged, "the first order");
    let (second, flagged) = warned(5);
    assert!(flagged, "a second open order for the same person and unit");
    let (ok, show, _) = run(&inst, &["cases", "show", &second]);
    assert!(ok && show.contains("open_order_exists"), "{show}");

    // The first card handed out (the second order confirmed away): a replacement is fine.
    for step in [
        vec!["cases", "mark", &first, "ordered_at_telia"],
        vec!["cases", "mark", &first, "card_ready"],
        vec![
            "cases",
            "mark",
            &first,
            "handed_out",
            "--card-number",
            "9752 2679 0010 0000 120",
        ],
    ] {
        let (ok, out, err) = run(&inst, &step);
        assert!(ok, "{step:?}: {out}{err}");
    }
    let (ok, _, err) = run(&inst, &["cases", "mark", &second, "ordered_at_telia"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&inst, &["cases", "mark", &second, "card_ready"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &inst,
        &[
            "cases",
            "mark",
            &second,
            "handed_out",
            "--card-number",
            "9752 2679 0010 0000 138",
        ],
    );
    assert!(ok, "{err}");
    let (_, flagged) = warned(10);
    assert!(
        !flagged,
        "no open order left: a replacement order is not flagged"
    );
}

/// Until a member of staff changes the store's register it is a copy of `[providers] csv` and
/// follows the file, so a configuration of SPEC §6's keys alone behaves as before; after a
/// change by staff the store's register stands (issue 22, SPEC §3.2).
#[test]
fn the_register_follows_the_csv_until_staff_change_it() {
    let inst = Installation::new("");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mail = inst.path("a.eml");
    let decide = |i: usize| -> String {
        std::fs::write(&mail, sample_mail(i)).unwrap();
        let (ok, out, err) = run(&inst, &["process", "--json", mail.to_str().unwrap()]);
        assert!(ok, "{err}");
        out
    };
    assert!(!decide(0).contains("provider_not_connected"));
    // The CSV without the sample order's provider (232100-0131).
    let csv = inst.path("providers.csv");
    std::fs::write(
        &csv,
        "organisationsnummer,vardgivare,ansluten\n5560160680,Hälsan Väst AB,2024-03-01\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(&inst.config).unwrap().replace(
        &format!("{:?}", root.join("fixtures/providers.csv")),
        &format!("{csv:?}"),
    );
    std::fs::write(&inst.config, config).unwrap();
    assert!(
        decide(5).contains("provider_not_connected"),
        "the copy follows the changed CSV"
    );
    // A member of staff connects it: from now on the store's register is the register.
    let (ok, _, err) = run(
        &inst,
        &[
            "providers",
            "add",
            "232100-0131",
            "--name",
            "Västra Götalandsregionen",
            "--connected",
            "2019-01-01",
            "--comment",
            "Ansluten via kansliet",
        ],
    );
    assert!(ok, "{err}");
    assert!(!decide(10).contains("provider_not_connected"));
    let (_, list, _) = run(&inst, &["providers", "list"]);
    assert!(
        list.contains("556016-0680") && list.contains("232100-0131"),
        "{list}"
    );
}
