//! Live-mail benchmark against real servers (Dovecot + aiosmtpd, started here):
//!
//! 1. arrival → reply: APPEND one email at a time to the IMAP folder while the daemon waits in
//!    IDLE, and time until its reply is received by the SMTP server; p50/p95/max.
//! 2. backlog throughput: N emails waiting before the daemon starts, read over IMAP, against
//!    the same N read from a Maildir (file sink in both, so only the source differs).
//!
//! `cargo run --release --example live_bench -- [LATENCY_EMAILS] [BACKLOG_EMAILS]`

#[path = "../tests/support/mail_servers.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{mails, Daemon, World};
use tjid_intake::sink::{FileSink, ReplySink};
use tjid_intake::store::Store;

const NO_RATE_LIMIT: &str = "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n";

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let latency_n = args.first().copied().unwrap_or(200);
    let backlog_n = args.get(1).copied().unwrap_or(1000);
    if !support::servers_available() {
        std::process::exit(1);
    }
    support::init_logging();

    // 1. Arrival → reply with IDLE.
    let world = World::start().await;
    let daemon = Daemon::start(world.settings("", NO_RATE_LIMIT)).await;
    support::wait_until(20, "IMAP connected", || async {
        daemon.status.get().as_str() == "connected"
    })
    .await;
    let mut client = world.dovecot.client().await;
    let mut latencies = Vec::with_capacity(latency_n);
    for i in 0..latency_n {
        let (_, raw) = mails::notice(i, if i % 4 == 0 { "Nej" } else { "Ja" });
        let before = world.smtp.count();
        let t0 = Instant::now();
        world.dovecot.append(&mut client, "INBOX", &raw).await;
        let deadline = t0 + Duration::from_secs(30);
        while world.smtp.count() <= before {
            assert!(
                Instant::now() < deadline,
                "no reply within 30 s for email {i}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = client.logout().await;
    daemon.stop().await;
    latencies.sort_by(f64::total_cmp);
    println!("arrival → reply (IMAP APPEND → reply received by SMTP, IDLE, one at a time)");
    println!("  emails: {latency_n}");
    println!(
        "  p50 {:.0} ms   p95 {:.0} ms   max {:.0} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.95),
        latencies.last().copied().unwrap_or(0.0)
    );
    drop(world);

    // 2. Backlog throughput, IMAP against Maildir; replies to files in both.
    let world = World::start().await;
    let mut client = world.dovecot.client().await;
    for i in 0..backlog_n {
        let (_, raw) = mails::notice(10_000 + i, "Ja");
        world.dovecot.append(&mut client, "INBOX", &raw).await;
    }
    let _ = client.logout().await;
    let settings = world.settings("", NO_RATE_LIMIT);
    let store = Store::open_sqlite(&settings.store.sqlite).await.unwrap();
    let sink = ReplySink::File(FileSink::open(&world.temp.path().join("replies")).unwrap());
    let t0 = Instant::now();
    let daemon = Daemon::start_with(settings, store.clone(), sink).await;
    support::wait_until(600, "IMAP backlog recorded", || async {
        store.counts().await.unwrap().messages >= backlog_n as i64
    })
    .await;
    support::wait_until(60, "IMAP backlog acknowledged", || async {
        world.dovecot.count("INBOX").await == 0
    })
    .await;
    let imap_secs = t0.elapsed().as_secs_f64();
    daemon.stop().await;

    let dir = world.temp.path().join("maildir-bench");
    let maildir = dir.join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for i in 0..backlog_n {
        let (_, raw) = mails::notice(20_000 + i, "Ja");
        std::fs::write(maildir.join("new").join(format!("{i:08}.bench.eml")), raw).unwrap();
    }
    let mut settings = world.settings("", NO_RATE_LIMIT);
    settings.source.kind = tjid_intake::config::SourceKind::Maildir;
    settings.source.maildir = maildir.clone();
    settings.store.sqlite = dir.join("maildir.db");
    let store = Store::open_sqlite(&settings.store.sqlite).await.unwrap();
    let sink = ReplySink::File(FileSink::open(&dir.join("replies")).unwrap());
    let t0 = Instant::now();
    let daemon = Daemon::start_with(settings, store.clone(), sink).await;
    support::wait_until(600, "Maildir backlog recorded", || async {
        std::fs::read_dir(maildir.join("new"))
            .map(|d| d.count())
            .unwrap_or(1)
            == 0
            && store.counts().await.unwrap().messages >= backlog_n as i64
    })
    .await;
    let maildir_secs = t0.elapsed().as_secs_f64();
    daemon.stop().await;

    println!("backlog throughput ({backlog_n} emails waiting at start; recorded and acknowledged)");
    println!(
        "  IMAP (Dovecot, UID FETCH batches of 50, MOVE): {imap_secs:.2} s  {:.0} emails/s",
        backlog_n as f64 / imap_secs
    );
    println!(
        "  Maildir:                                      {maildir_secs:.2} s  {:.0} emails/s",
        backlog_n as f64 / maildir_secs
    );
}
