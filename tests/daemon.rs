//! `run` on the embedded default: a file dropped into the Maildir's new/ is processed and
//! answered without a restart; SIGTERM stops it cleanly; a long scan being read does not hold
//! up the mail that arrives after it.

#[allow(dead_code)]
#[path = "../examples/common/scan.rs"]
mod scan;
mod support;

use std::time::{Duration, Instant};

use support::{sample_mail, Installation};

#[test]
fn a_dropped_file_is_processed_and_answered_promptly() {
    let inst = Installation::new("");
    let mut child = inst.command().arg("run").spawn().unwrap();
    wait_until_idle(&inst);
    let dropped = Instant::now();
    inst.deliver("1.drop.test", &sample_mail(0));
    let mut answered = None;
    while dropped.elapsed() < Duration::from_secs(5) {
        if inst.count("maildir/cur") == 1 && inst.count("outbox") == 1 {
            answered = Some(dropped.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe_terminate(&child);
    let status = child.wait().unwrap();
    let took = answered.expect("the dropped mail was not processed within 5 s");
    eprintln!(
        "dropped file processed and answered in {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

/// Waits until `run` has created its database and gone idle.
fn wait_until_idle(inst: &Installation) {
    let started = Instant::now();
    while !inst.path("intake.db").exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// A 20-page scanned letter (no form on it): about half a minute of OCR on two cores.
fn twenty_page_scan() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(root.join("fixtures/scans/scan_not_a_form.eml")).unwrap();
    let mail = tjid_intake::pipeline::parse::parse_mail(&raw).unwrap();
    let jpeg = mail.attachments[0].data.clone();
    let img = image::load_from_memory(&jpeg).unwrap();
    let page = (img.width(), img.height(), jpeg);
    let pdf = scan::pdf_of_jpegs(&vec![page; 20]);
    let spec = tjid_testkit::mime::MailSpec::new(
        "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
        "Skannade papper",
        "<twenty-pages@test.tjid>",
        "Wed, 18 Nov 2026 10:00:00 +0100",
    )
    .attach_pdf("skanning.pdf", pdf);
    tjid_testkit::mime::build(&spec)
}

/// Whether Tesseract with Swedish is missing: a failure in CI, a loud skip elsewhere.
fn ocr_missing() -> bool {
    if tjid_intake::ocr::available("swe") {
        return false;
    }
    let msg = "tesseract with the Swedish model is not installed";
    assert!(std::env::var_os("CI").is_none(), "{msg}: required in CI");
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    true
}

#[test]
fn a_long_scan_does_not_hold_up_the_mail_after_it() {
    if ocr_missing() {
        return;
    }
    let inst = Installation::new("");
    let mut child = inst.command().arg("run").spawn().unwrap();
    wait_until_idle(&inst);
    inst.deliver("1.scan.test", &twenty_page_scan());
    std::thread::sleep(Duration::from_millis(500));
    // The scan is being read now; a digital form arrives.
    let dropped = Instant::now();
    inst.deliver("2.form.test", &sample_mail(0));
    let mut answered = None;
    while dropped.elapsed() < Duration::from_secs(20) {
        if inst.count("outbox") >= 1 {
            answered = Some(dropped.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let scan_pending = inst.count("maildir/new") == 1;
    // Then the scan completes too, with its own outcome.
    let started = Instant::now();
    while inst.count("maildir/cur") < 2 && started.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let scan_took = started.elapsed() + Duration::from_millis(500);
    unsafe_terminate(&child);
    let status = child.wait().unwrap();
    let took = answered.expect("the digital form was not answered within 20 s");
    eprintln!(
        "form answered after {} ms while the scan was read; the scan took about {} s",
        took.as_millis(),
        scan_took.as_secs()
    );
    assert!(
        scan_pending,
        "the scan was still being read when the form was answered"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(
        inst.count("maildir/cur"),
        2,
        "both emails got their outcome"
    );
    // The form is answered; the scan (a letter, no form) is held for staff, since OCR found no
    // form in it (SPEC §4.4): no reply of its own.
    assert_eq!(inst.count("outbox"), 1, "the form answered, the scan held");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

/// Issue 20: a 20-page scan gets the same decision on an idle machine and with every core
/// busy. The attachment's OCR budget (`page_timeout_secs = 24`) is well above the scan's
/// processor time (about 12 s on the whole machine, measured and printed here) but below the
/// wall-clock time its programs take while two busy loops per core share the cores (about
/// three times that), so a budget counted on the wall clock (as before) made the busy run
/// `unreadable_attachment`.
#[test]
fn a_long_scan_gets_the_same_decision_idle_and_under_load() {
    if ocr_missing() {
        return;
    }
    let inst = Installation::new("[ocr]\npage_timeout_secs = 24\n");
    let dir = inst.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scan.eml"), twenty_page_scan()).unwrap();
    // Processor time of the whole machine (user and system), in seconds: on an idle machine,
    // what the run cost.
    let machine_cpu = || {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        (ticks.first().unwrap_or(&0.0) + ticks.get(2).unwrap_or(&0.0)) / 100.0
    };
    let decide = || {
        let started = Instant::now();
        let cpu = machine_cpu();
        let out = inst
            .command()
            .args(["process", "--dry-run", "--json", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let json: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("one JSON line: {e}: {text}"));
        let cases: Vec<_> = json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["decision"].to_string(), c["reasons"].to_string()))
            .collect();
        eprintln!(
            "20-page scan: {:.1} s, {:.1} processor seconds on the whole machine",
            started.elapsed().as_secs_f64(),
            machine_cpu() - cpu
        );
        (json["decision"].to_string(), cases, started.elapsed())
    };
    let (idle, idle_cases, idle_took) = decide();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut hogs: Vec<_> = (0..2 * cores)
        .map(|_| {
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .unwrap()
        })
        .collect();
    let (busy, busy_cases, busy_took) = decide();
    for hog in &mut hogs {
        let _ = hog.kill();
        let _ = hog.wait();
    }
    eprintln!(
        "20-page scan: idle {} s, with {} busy loops {} s",
        idle_took.as_secs(),
        hogs.len(),
        busy_took.as_secs()
    );
    assert!(
        !format!("{idle_cases:?}").contains("unreadable_attachment"),
        "read on an idle machine: {idle_cases:?}"
    );
    assert_eq!((idle, idle_cases), (busy, busy_cases));
}

/// A backlog of quick emails of several kinds (fillable, table and same-line forms, notices):
/// read in parallel, recorded in arrival order, so case numbers follow the Maildir's order.
#[test]
fn case_numbers_follow_arrival_order() {
    let inst = Installation::new("");
    let n = 40;
    for i in 0..n {
        inst.deliver(&format!("{i:04}.backlog.test"), &sample_mail(i));
    }
    let mut child = inst.command().arg("run").spawn().unwrap();
    let started = Instant::now();
    while inst.count("maildir/cur") < n && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe_terminate(&child);
    child.wait().unwrap();
    let cases = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = tjid_intake::store::Store::open_sqlite(&inst.path("intake.db"))
            .await
            .unwrap();
        store
            .list_cases(&tjid_intake::store::CaseFilter {
                limit: 0,
                ..Default::default()
            })
            .await
            .unwrap()
    });
    let mut by_number: Vec<(u64, usize)> = cases
        .iter()
        .map(|c| {
            let number = c.id.rsplit('-').next().unwrap().parse().unwrap();
            let email = c
                .subject
                .strip_prefix("Blankett ")
                .unwrap()
                .parse()
                .unwrap();
            (number, email)
        })
        .collect();
    by_number.sort();
    let emails: Vec<usize> = by_number.iter().map(|(_, e)| *e).collect();
    assert_eq!(emails.len(), n, "one case per email");
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(emails, sorted, "case numbers in arrival order");
}

/// Sends SIGTERM without pulling in a signal crate.
fn unsafe_terminate(child: &std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Gives the installation its own copy of the fixture `rel` (the configuration names the
/// copy), so that a test can change it under a running daemon.
fn own_copy(inst: &Installation, rel: &str) -> (std::path::PathBuf, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = std::fs::read_to_string(root.join(rel)).unwrap();
    let name = std::path::Path::new(rel).file_name().unwrap();
    let copy = inst.path(name.to_str().unwrap());
    std::fs::write(&copy, &fixture).unwrap();
    let config = std::fs::read_to_string(&inst.config)
        .unwrap()
        .replace(&format!("{:?}", root.join(rel)), &format!("{copy:?}"));
    std::fs::write(&inst.config, config).unwrap();
    (copy, fixture)
}

/// Delivers `sample_mail(i)` to a running daemon and returns the text of its reply.
fn reply_to(inst: &Installation, i: usize) -> String {
    let replies = inst.count("outbox");
    inst.deliver(&format!("{i}.watch.test"), &sample_mail(i));
    let started = Instant::now();
    while inst.count("outbox") == replies && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let newest = std::fs::read_dir(inst.path("outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap())
        .expect("a reply");
    let raw = std::fs::read(newest.path()).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
    mail.body_text(0).unwrap().into_owned()
}

/// The KIV snapshot follows its file under a running daemon (issue 22): a file cut short is
/// not used (the next decision is as before), a good new file decides the next email.
#[test]
fn a_replaced_kiv_snapshot_decides_the_next_email_and_a_cut_one_does_not() {
    let inst = Installation::new("");
    let (ldif, fixture) = own_copy(&inst, "fixtures/kiv.ldif");
    let mut child = inst.command().arg("run").spawn().unwrap();
    wait_until_idle(&inst);
    // The sample order's person (19121212-1212) is in KIV: queued.
    let first = reply_to(&inst, 0);
    assert!(!first.contains("finns inte i KIV"), "{first}");
    // The person's entry and all after it cut off, mid-line: not used.
    let at = fixture
        .find("personalIdentityNumber: 191212121212")
        .unwrap();
    std::fs::write(&ldif, &fixture[..at - 20]).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let second = reply_to(&inst, 5);
    assert!(
        !second.contains("finns inte i KIV"),
        "a cut file is not used: {second}"
    );
    // A good file without the person: the next order is rejected person_not_in_kiv.
    let without: Vec<&str> = fixture
        .split("\n\n")
        .filter(|e| !e.contains("personalIdentityNumber: 191212121212"))
        .collect();
    std::fs::write(&ldif, without.join("\n\n")).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let third = reply_to(&inst, 10);
    unsafe_terminate(&child);
    child.wait().unwrap();
    assert!(third.contains("finns inte i KIV"), "{third}");
}

/// The provider register follows providers.csv under a running daemon while no member of
/// staff has changed it (issue 22): a provider removed from the file decides the next order
/// as not connected; once staff have changed the register, the file is not followed.
#[test]
fn the_register_follows_its_csv_until_staff_change_it() {
    const NOT_CONNECTED: &str = "inte ansluten till eTjänstekort";
    let inst = Installation::new("");
    let (csv, fixture) = own_copy(&inst, "fixtures/providers.csv");
    let mut child = inst.command().arg("run").spawn().unwrap();
    wait_until_idle(&inst);
    // The sample order's provider (232100-0131) is connected: queued.
    let first = reply_to(&inst, 0);
    assert!(!first.contains(NOT_CONNECTED), "{first}");
    let without: String = fixture
        .lines()
        .filter(|l| !l.starts_with("232100-0131"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&csv, &without).unwrap();
    // Seen changed, seen settled, read: two to three refreshes of 5 s.
    std::thread::sleep(Duration::from_secs(16));
    let second = reply_to(&inst, 5);
    assert!(second.contains(NOT_CONNECTED), "{second}");
    // A member of staff connects it again: the register is theirs from now on.
    let out = inst
        .command()
        .args([
            "providers",
            "add",
            "232100-0131",
            "--name",
            "Västra Götalandsregionen",
        ])
        .args([
            "--connected",
            "2019-01-01",
            "--comment",
            "ansluten igen",
            "--by",
            "staff.test",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&csv, format!("{without}5569999991,Ny AB,2020-01-01\n")).unwrap();
    std::thread::sleep(Duration::from_secs(16));
    let third = reply_to(&inst, 10);
    unsafe_terminate(&child);
    child.wait().unwrap();
    assert!(
        !third.contains(NOT_CONNECTED),
        "staff's change decides: {third}"
    );
    let listed = inst.command().args(["providers", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        !listed.contains("Ny AB"),
        "the file is not followed after staff's change: {listed}"
    );
}
