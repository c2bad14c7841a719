//! `run` on the embedded default: a file dropped into the Maildir's new/ is processed and
//! answered without a restart; SIGTERM stops it cleanly.

mod support;

use std::time::{Duration, Instant};

use support::{sample_mail, Installation};

#[test]
fn a_dropped_file_is_processed_and_answered_promptly() {
    let inst = Installation::new("");
    let mut child = inst.command().arg("run").spawn().unwrap();
    // Let it start and go idle first.
    let started = Instant::now();
    while !inst.path("intake.db").exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
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

/// Sends SIGTERM without pulling in a signal crate.
fn unsafe_terminate(child: &std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}
