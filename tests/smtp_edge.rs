//! Exactly once at the SMTP edge (issue 13), with `tjid-intake run` child processes, Dovecot
//! and aiosmtpd.
//!
//! The daemon marks a reply `sending` (committed) before it hands the reply to the SMTP
//! server and records the server's answer after. The debug-build hook
//! `TJID_TEST_DIE_AFTER_SMTP_ACCEPT` makes the daemon abort between the server's acceptance
//! and that record, the window a SIGKILL can hit. After a restart the reply is in doubt: it is
//! not sent again at once, but only `[outbox] in_doubt_resend_after_secs` after it was handed
//! over, and then exactly once more (the README documents this remaining window).
//!
//! Needs Dovecot and aiosmtpd: fails under `CI=true` when one is missing, skips loudly
//! otherwise.

#[path = "support/mail_servers.rs"]
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::{mails, wait_until, World, PROCESSED};
use tjid_intake::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_tjid-intake");
const IN_DOUBT_SECS: u64 = 20;

fn start(world: &World, die_after_accept: bool) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(world.config_path()).arg("run");
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or("warn".into()),
    );
    if die_after_accept {
        cmd.env("TJID_TEST_DIE_AFTER_SMTP_ACCEPT", "1");
    }
    cmd.spawn().expect("start the daemon")
}

async fn wait_for_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_accepted_just_before_a_crash_goes_out_again_only_after_the_in_doubt_delay() {
    if !support::servers_available() {
        return;
    }
    let world = World::start().await;
    let settings = world.settings(
        "",
        &format!(
            "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n\
             [outbox]\ninitial_backoff_secs = 1\nin_doubt_resend_after_secs = {IN_DOUBT_SECS}\n"
        ),
    );
    let mut client = world.dovecot.client().await;
    let (message_id, raw) = mails::notice(1, "Ja");
    world.dovecot.append(&mut client, "INBOX", &raw).await;
    let _ = client.logout().await;

    // The first daemon reads the email, records the case, sends the reply and dies the
    // moment the server has accepted it.
    let mut first = start(&world, true);
    let status = wait_for_exit(&mut first, 120).await;
    let crashed = Instant::now();
    assert!(!status.success(), "the hook aborts the daemon: {status:?}");
    assert_eq!(world.smtp.count(), 1, "the server accepted the reply");
    {
        let store = Store::open_sqlite(&settings.store.sqlite).await.unwrap();
        let c = store.counts().await.unwrap();
        assert_eq!(
            (c.outbox_pending, c.outbox_sent),
            (1, 0),
            "the acceptance was never recorded"
        );
        let in_doubt = store.due_replies(i64::MAX, 10).await.unwrap();
        assert!(in_doubt[0].sending_at.is_some(), "marked sending");
    }

    // Restarted, it does not send the reply again at once ...
    let mut second = start(&world, false);
    wait_until(60, "the email acknowledged", || async {
        world.dovecot.count(PROCESSED).await == 1
    })
    .await;
    let quiet_until = crashed + Duration::from_secs(IN_DOUBT_SECS - 5);
    while Instant::now() < quiet_until {
        assert_eq!(
            world.smtp.count(),
            1,
            "an in-doubt reply went out again at once"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ... but once the delay has passed, and then once.
    wait_until(
        IN_DOUBT_SECS + 60,
        "the in-doubt reply sent again",
        || async { world.smtp.count() >= 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = world.smtp.received();
    assert_eq!(received.len(), 2, "one resend, no more");
    for r in &received {
        assert_eq!(
            r.header("In-Reply-To").as_deref(),
            Some(message_id.as_str())
        );
    }
    assert_eq!(
        received[0].header("Message-ID"),
        received[1].header("Message-ID"),
        "the same reply (a receiving server can drop the copy by its Message-ID)"
    );
    let _ = second.kill();
    let _ = second.wait();
    let store = Store::open_sqlite(&settings.store.sqlite).await.unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!((c.outbox_pending, c.outbox_sent), (0, 1));
}
