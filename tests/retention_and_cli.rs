//! Retention with a fake clock, and the staff commands of the CLI (`cases overturn|confirm|
//! mark`, `users`, `purge`).

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use support::Installation;
use tjid_intake::casework::lifecycle::{apply, Action, Request};
use tjid_intake::clock::DAY_MS;
use tjid_intake::config::Settings;
use tjid_intake::pipeline::reply::ReplySettings;
use tjid_intake::store::Store;

fn process(inst: &Installation, names: &[&str]) -> HashMap<String, String> {
    let input = inst.path("in");
    std::fs::create_dir_all(&input).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in names {
        std::fs::copy(
            root.join(format!("fixtures/mail/{name}.eml")),
            input.join(format!("{name}.eml")),
        )
        .unwrap();
    }
    let out = inst
        .command()
        .args(["process", "--json"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut cases = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = Path::new(v["source"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        if let Some(c) = v["cases"].get(0) {
            cases.insert(name, c["case_id"].as_str().unwrap().to_string());
        }
    }
    cases
}

const REPLY: ReplySettings<'static> = ReplySettings {
    own_address: "tjansteid-intake@vgregion.se",
    display_name: "TjänsteID-service",
    office_address: "tjansteid@vgregion.se",
};

#[tokio::test]
async fn retention_erases_personal_data_per_outcome_and_keeps_a_shell() {
    let inst = Installation::new("");
    let cases = process(
        &inst,
        &[
            "order_table_ok",
            "order_same_line_ok",
            "order_person_not_in_kiv",
            "ignored_auto_reply",
        ],
    );
    let store = Store::open_sqlite(&inst.path("intake.db")).await.unwrap();
    let settings = Settings::load_with_env(Some(&inst.config), []).unwrap();
    let t0 = chrono::Utc::now().timestamp_millis();
    // One order is completed now; the other stays in work.
    let done = &cases["order_table_ok"];
    for action in [Action::OrderedAtTelia, Action::CardReady, Action::HandedOut] {
        apply(
            &store,
            &REPLY,
            t0,
            Request {
                case_id: done.clone(),
                action,
                actor: "anna".into(),
                comment: Some("Anna-Karin ringde".into()),
                card_number: Some("9752267900100000120".into()),
                checksum_confirmed: false,
            },
        )
        .await
        .unwrap();
    }
    let purge = |days: i64| {
        let store = store.clone();
        let retention = settings.retention.clone();
        async move {
            tjid_intake::casework::retention::purge(
                &store,
                &retention,
                None,
                t0 + days * DAY_MS + 60_000,
            )
            .await
            .unwrap()
        }
    };
    let report = purge(29).await;
    assert_eq!(
        (
            report.messages,
            report.rejected_cases,
            report.completed_cases
        ),
        (0, 0, 0)
    );
    // 30 days: the ignored mail goes.
    let report = purge(30).await;
    assert_eq!(report.messages, 1);
    let ignored = &store.unprocessed_mail(10, 0).await.unwrap()[0];
    assert!(ignored.purged_at.is_some());
    assert_eq!(ignored.subject, "");
    assert_eq!(ignored.sender, None);

    // 90 days after its last event: the rejected case becomes a shell.
    assert_eq!(purge(89).await.rejected_cases, 0);
    let report = purge(90).await;
    assert_eq!(report.rejected_cases, 1);
    assert_eq!(report.messages, 1, "its email goes with it");
    let shell = store
        .case_detail(&cases["order_person_not_in_kiv"])
        .await
        .unwrap()
        .unwrap();
    assert!(shell.case.purged_at.is_some());
    assert_eq!(shell.case.fields, "{}");
    assert_eq!(shell.case.kind, "order");
    // Closed by its retention (issue 25): it leaves Avvisade.
    assert_eq!(shell.case.state, "rejection_confirmed");
    assert_eq!(shell.case.subject, "");
    assert_eq!(shell.case.headers, "");
    assert_eq!(shell.case.sender, None);
    assert!(shell
        .replies
        .iter()
        .all(|r| r.raw.is_empty() && r.recipient.is_empty()));
    assert_eq!(shell.audit.last().unwrap().action, "purged");
    assert_eq!(
        (
            shell.audit.last().unwrap().before.as_deref(),
            shell.audit.last().unwrap().after.as_deref()
        ),
        (Some("rejected"), Some("rejection_confirmed"))
    );
    // A purged case can no longer be changed.
    let err = apply(
        &store,
        &REPLY,
        t0,
        Request {
            case_id: cases["order_person_not_in_kiv"].clone(),
            action: Action::Confirm,
            actor: "anna".into(),
            comment: None,
            card_number: None,
            checksum_confirmed: false,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        tjid_intake::casework::lifecycle::LifecycleError::Purged
    ));

    // Completed cases: two years.
    assert_eq!(purge(729).await.completed_cases, 0);
    let report = purge(730).await;
    assert_eq!(report.completed_cases, 1);
    let shell = store.case_detail(done).await.unwrap().unwrap();
    assert_eq!(shell.case.fields, "{}");
    assert_eq!(shell.case.card_number, None);
    assert!(
        shell.audit.iter().all(|a| a.comment.is_none()),
        "staff comments go too"
    );
    // The known card keeps only its link to the shell.
    let card = store
        .known_card("9752267900100000120")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&card.order_case, done);

    // A case still in work is never erased.
    let report = purge(3650).await;
    assert_eq!(report.completed_cases + report.rejected_cases, 0);
    let open = store
        .case_detail(&cases["order_same_line_ok"])
        .await
        .unwrap()
        .unwrap();
    assert!(open.case.purged_at.is_none());
    assert!(open.case.fields.contains("19121212-1212"));
}

fn run(inst: &Installation, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = inst
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_moves_cases_through_checked_transitions() {
    let inst = Installation::new("");
    let cases = process(
        &inst,
        &[
            "order_table_ok",
            "order_person_not_in_kiv",
            "dereg_table_ok",
        ],
    );
    let order = cases["order_table_ok"].as_str();
    let rejected = cases["order_person_not_in_kiv"].as_str();
    let dereg = cases["dereg_table_ok"].as_str();

    // Wrong order of steps: refused, exit 1, nothing changes.
    let (code, _, err) = run(
        &inst,
        &[
            "cases",
            "mark",
            order,
            "handed_out",
            "--card-number",
            "9752267900100000120",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not allowed"), "{err}");
    // Overturn needs a comment (clap refuses without one).
    let (code, _, _) = run(&inst, &["cases", "overturn", rejected], None);
    assert_ne!(code, 0);
    let (code, out, err) = run(
        &inst,
        &[
            "cases",
            "overturn",
            rejected,
            "--comment",
            "KIV uppdaterat",
            "--by",
            "anna",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rejected -> queued"), "{out}");
    // The notice went out through the outbox into the reply folder.
    assert!(inst.path(&format!("outbox/{rejected}-2.eml")).is_file());

    for state in ["ordered_at_telia", "card_ready"] {
        let (code, _, err) = run(&inst, &["cases", "mark", order, state], None);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = run(
        &inst,
        &["cases", "mark", order, "handed_out", "--card-number", "12"],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("card number"), "{err}");
    let (code, _, err) = run(
        &inst,
        &[
            "cases",
            "mark",
            order,
            "handed_out",
            "--card-number",
            "9752 2679 0010 0000 120",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&inst, &["cases", "mark", dereg, "deregistered"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notices queued"), "{out}");
    let (_, out, _) = run(&inst, &["cases", "show", order], None);
    assert!(out.contains("handed_out"), "{out}");
    assert!(out.contains("card_ready -> handed_out"), "{out}");
    // A wrong number corrected: a comment is needed, and a number failing its Luhn digit
    // only with --checksum-checked.
    let correct = |extra: &[&'static str]| {
        let mut args = vec![
            "cases",
            "mark",
            order,
            "correct_card",
            "--card-number",
            "9752 2679 0010 0000 121",
        ];
        args.extend_from_slice(extra);
        run(&inst, &args, None)
    };
    let (code, _, err) = correct(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("comment"), "{err}");
    let (code, _, err) = correct(&["--comment", "fel siffra"]);
    assert_eq!(code, 1);
    assert!(err.contains("check digit"), "{err}");
    let (code, _, err) = correct(&["--comment", "fel siffra", "--checksum-checked"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(&inst, &["cases", "show", order], None);
    assert!(
        out.contains("9752267900100000120 -> 9752267900100000121"),
        "{out}"
    );

    // Users.
    let (code, _, err) = run(&inst, &["users", "add", "bo"], Some("kort"));
    assert_ne!(code, 0);
    assert!(err.contains("at least 12"), "{err}");
    let (code, _, err) = run(
        &inst,
        &["users", "add", "bo", "--name", "Bo"],
        Some("ett långt lösenord"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run(&inst, &["users", "add", "bo"], Some("ett långt lösenord"));
    assert_eq!(code, 1);
    let (code, _, _) = run(&inst, &["users", "disable", "bo"], None);
    assert_eq!(code, 0);
    let (_, out, _) = run(&inst, &["users", "list"], None);
    assert!(out.contains("disabled"), "{out}");
    let (code, _, _) = run(&inst, &["users", "disable", "nobody"], None);
    assert_eq!(code, 1);

    let (code, out, err) = run(&inst, &["purge"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged: 0 email(s)"), "{out}");
}

#[test]
fn a_backup_is_a_store_that_can_be_restored() {
    let inst = Installation::new("");
    let cases = process(&inst, &["order_table_ok", "order_person_not_in_kiv"]);
    let backup = inst.path("backup.db");
    let (code, out, err) = run(&inst, &["backup", backup.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("backup written"), "{out}");
    // Never over an existing file.
    let (code, _, err) = run(&inst, &["backup", backup.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(err.contains("exists already"), "{err}");
    // Restore: the daemon stopped, the backup put where the store was.
    let before = run(&inst, &["cases", "list"], None).1;
    std::fs::remove_file(inst.path("intake.db")).unwrap();
    let _ = std::fs::remove_file(inst.path("intake.db-wal"));
    let _ = std::fs::remove_file(inst.path("intake.db-shm"));
    std::fs::copy(&backup, inst.path("intake.db")).unwrap();
    let after = run(&inst, &["cases", "list"], None).1;
    assert_eq!(before, after);
    for id in cases.values() {
        assert!(after.contains(id.as_str()), "{id} in {after}");
    }
}
