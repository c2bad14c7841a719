//! Exactly once at the SMTP edge, with `tjid-intake run` child processes, Dovecot and
//! aiosmtpd.
//!
//! The daemon writes a reply's whole message, commits "handed over" and only then writes
//! SMTP's final `.` (src/sink/smtp.rs). The debug-build hook `TJID_TEST_DIE_AT` aborts the
//! daemon, as a SIGKILL would, on either side of that commit:
//! - `before_hand_over`: the server holds an open transaction and discards it when the
//!   connection dies; the restarted daemon sends the reply at once, and once.
//! - `after_end_of_data`: the `.` is written, the answer not read; the server delivers the
//!   reply and the restarted daemon never sends it again.
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
fn start(world: &World, die_at: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(world.config_path()).arg("run");
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or("warn".into()),
    );
    if let Some(point) = die_at {
        cmd.env("TJID_TEST_DIE_AT", point);
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

/// The servers, one email in the mailbox, a daemon that dies at `point` while it sends the
/// reply, and a second daemon started after it: the email's Message-ID, the second daemon
/// and the daemons' store. `None` when the servers are missing (outside CI).
async fn die_while_sending(point: &str) -> Option<(World, String, Child, Store)> {
    if !support::servers_available() {
        return None;
    }
    let world = World::start().await;
    let settings = world.settings("", NO_LIMITS);
    let mut client = world.dovecot.client().await;
    let (message_id, raw) = mails::notice(1, "Ja");
    world.dovecot.append(&mut client, "INBOX", &raw).await;
    let _ = client.logout().await;
    let mut first = start(&world, Some(point));
    let status = wait_for_exit(&mut first, 120).await;
    assert!(!status.success(), "the hook aborts the daemon: {status:?}");
    let second = start(&world, None);
    let store = Store::open_sqlite(&settings.store.sqlite).await.unwrap();
    Some((world, message_id, second, store))
}

/// The outbox counts (pending, sent, held) in the daemons' database.
async fn outbox(store: &Store) -> (i64, i64, i64) {
    let c = store.counts().await.unwrap();
    (c.outbox_pending, c.outbox_sent, c.outbox_held)
}

/// Waits until the second daemon acknowledged the email and the outbox settled (nothing
/// pending or awaiting an answer), then long enough for a second send to show; returns the
/// replies at the server, each checked to answer the email.
async fn settled(world: &World, store: &Store, message_id: &str) -> usize {
    wait_until(60, "the email acknowledged", || async {
        world.dovecot.count(PROCESSED).await == 1
    })
    .await;
    wait_until(60, "the outbox settled", || async {
        let (pending, sent, held) = outbox(store).await;
        pending == 0 && sent + held == 1
    })
    .await;
    // The outbox polls every second or so: a second send would come within this.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = world.smtp.received();
    for r in &received {
        assert_eq!(r.header("In-Reply-To").as_deref(), Some(message_id));
    }
    received.len()
}

/// `tjid-intake CMD…` on the daemons' configuration: success and what it printed.
fn cli(world: &World, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(world.config_path())
        .args(args)
        .output()
        .expect("run the command line");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn stop(mut daemon: Child) {
    let _ = daemon.kill();
    let _ = daemon.wait();
}

const NO_LIMITS: &str = "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n\
                         [outbox]\ninitial_backoff_secs = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_dying_before_the_hand_over_sends_the_reply_again_at_once_and_once() {
    let started = Instant::now();
    let Some((world, message_id, second, store)) = die_while_sending("before_hand_over").await
    else {
        return;
    };
    // The first daemon died with the transaction open, before its `.`: the server kept
    // nothing.
    assert_eq!(world.smtp.count(), 0, "no `.`, no message");
    assert_eq!(
        settled(&world, &store, &message_id).await,
        1,
        "exactly one reply"
    );
    assert_eq!(outbox(&store).await, (0, 1, 0));
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "sent again at once, not after a delay"
    );
    stop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_dying_after_its_end_of_data_leaves_the_reply_held_in_doubt_not_sent_again() {
    let Some((world, message_id, second, store)) = die_while_sending("after_end_of_data").await
    else {
        return;
    };
    // The `.` left before the process died: the server delivers the reply though nobody
    // reads its answer.
    wait_until(10, "the server took the reply", || async {
        world.smtp.count() == 1
    })
    .await;
    assert_eq!(
        settled(&world, &store, &message_id).await,
        1,
        "exactly one reply"
    );
    // The restarted daemon cannot know that: it holds the reply for staff.
    assert_eq!(outbox(&store).await, (0, 0, 1));
    let held = store.held_replies(10, 0).await.unwrap();
    assert!(
        held[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with(tjid_intake::store::IN_DOUBT),
        "{held:?}"
    );
    // It was handed over once: that counts as an attempt.
    let detail = store.case_detail(&held[0].case_id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].attempts, 1, "{:?}", detail.replies);
    // Staff find it in the relay's log and close it: sent, and never sent again.
    let (ok, out) = cli(
        &world,
        &["cases", "delivered", &held[0].case_id, "--by", "anna"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("1 reply held in doubt recorded as delivered"),
        "{out}"
    );
    let (ok, out) = cli(&world, &["cases", "delivered", &held[0].case_id]);
    assert!(!ok && out.contains("has no reply held in doubt"), "{out}");
    assert_eq!(outbox(&store).await, (0, 1, 0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world.smtp.count(), 1);
    stop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_dying_between_the_hand_over_and_its_end_of_data_leaves_it_to_staff() {
    let Some((world, message_id, second, store)) = die_while_sending("after_hand_over").await
    else {
        return;
    };
    // Recorded as handed over, but the `.` never left: nothing at the server, and the
    // restarted daemon holds the reply in doubt rather than guess.
    assert_eq!(settled(&world, &store, &message_id).await, 0);
    assert_eq!(outbox(&store).await, (0, 0, 1));
    // Staff find nothing in the relay's log and send it: it goes out once.
    let held = store.held_replies(10, 0).await.unwrap();
    let (ok, out) = cli(
        &world,
        &["cases", "release", &held[0].case_id, "--by", "anna"],
    );
    assert!(ok && out.contains("1 held reply released"), "{out}");
    wait_until(30, "the released reply sent", || async {
        world.smtp.count() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.smtp.count(), 1);
    assert_eq!(outbox(&store).await, (0, 1, 0));
    stop(second);
}
