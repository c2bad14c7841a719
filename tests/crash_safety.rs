//! Kill the daemon with SIGKILL at random moments while it works through a Maildir backlog,
//! restart it each time; at the end every email has exactly one outcome, every case exactly
//! one reply file, and no email is lost.

mod support;

use std::time::{Duration, Instant};

use support::{sample_mail, Installation};

const EMAILS: usize = 300;
const KILLS: usize = 24;

#[test]
fn sigkill_at_random_moments_loses_nothing_and_says_nothing_twice() {
    // Random kills land in the middle of emails: one killed twice while read on its own
    // would rightly be quarantined as poison, so that rule is off here (suspects are still
    // read on their own after each kill).
    let inst = Installation::new("[limits]\nmax_unfinished_attempts = 0\n");
    for i in 0..EMAILS {
        inst.deliver(&format!("{:06}.crash{i}.test", i), &sample_mail(i));
    }
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for round in 0..KILLS {
        // Kill once the daemon has made a little progress — a few emails acknowledged, or a few
        // replies written, by turns — plus a random few milliseconds, so that the kills land in
        // the middle of the work (between commit and acknowledgement, mid-transaction, between
        // writing a reply and marking it sent) rather than after it.
        let (watched, step) = if round % 2 == 0 {
            ("maildir/cur", 1 + next() % 8)
        } else {
            ("outbox", 1 + next() % 8)
        };
        let before = inst.count(watched);
        let mut child = inst.command().arg("run").spawn().expect("start the daemon");
        let started = Instant::now();
        let drained = || inst.count("maildir/new") == 0 && inst.count("outbox") >= EMAILS;
        while inst.count(watched) < before + step as usize
            && !drained()
            && started.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(next() % 15));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed after {} ms; {} in new/, {} replies",
            started.elapsed().as_millis(),
            inst.count("maildir/new"),
            inst.count("outbox")
        );
    }
    // A last run to the end of the backlog and the outbox.
    let mut child = inst.command().arg("run").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let counts = loop {
        std::thread::sleep(Duration::from_millis(200));
        if inst.count("maildir/new") == 0 {
            let store = runtime
                .block_on(tjid_intake::store::Store::open_sqlite(
                    &inst.path("intake.db"),
                ))
                .unwrap();
            let counts = runtime.block_on(store.counts()).unwrap();
            if counts.outbox_pending == 0 {
                break counts;
            }
        }
        assert!(Instant::now() < deadline, "the backlog did not drain");
    };
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(inst.count("maildir/new"), 0);
    assert_eq!(
        inst.count("maildir/cur"),
        EMAILS,
        "every email acknowledged exactly once"
    );
    assert_eq!(
        counts.messages as usize, EMAILS,
        "every email has exactly one recorded outcome"
    );
    // 4 of 5 sample mails make one case each; the fifth (no form) makes an unknown case too.
    assert_eq!(counts.cases as usize, EMAILS, "one case per email");
    assert_eq!(
        counts.outbox_sent, counts.cases,
        "every case's reply delivered"
    );
    let mut replies: Vec<String> = std::fs::read_dir(inst.path("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    replies.sort();
    assert_eq!(
        replies.len() as i64,
        counts.cases,
        "exactly one reply file per case"
    );
    let mut ids: Vec<&str> = replies
        .iter()
        .map(|r| r.trim_end_matches("-1.eml"))
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), replies.len());
}
