//! Several instances on PostgreSQL (issue 11): a backlog of N notices waiting in a Dovecot
//! INBOX, read by 1 or more `tjid-intake run` processes on one PostgreSQL database, replies
//! through aiosmtpd. Prints emails/s (from the first daemon's start to the last reply at the
//! SMTP server) and the p50/p95 arrival → reply time (every email arrived before the start).
//!
//! ```sh
//! cargo build --release --bins --examples
//! target/release/examples/instances_bench [EMAILS] [INSTANCES...]    # default 10000 1 3
//! ```
//!
//! Needs Dovecot, aiosmtpd and PostgreSQL on 127.0.0.1:5432 (as the tests). The daemon binary
//! is the `tjid-intake` beside `examples/`.

#[path = "../tests/support/instance.rs"]
mod instance;
#[path = "../tests/support/pg.rs"]
mod pg;
#[path = "../tests/support/mail_servers.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{mails, World, IGNORED, PROCESSED, QUARANTINED, USER};

const EXTRA: &str = "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n";

fn daemon_binary() -> String {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("tjid-intake"))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release --bins --examples",
        bin.display()
    );
    bin.display().to_string()
}

/// Writes the backlog straight into the user's Maildir INBOX (APPEND of 10 000 emails takes
/// longer than reading them); Dovecot indexes them at the first SELECT.
fn write_backlog(world: &World, emails: usize) {
    let new = world.dovecot.dir.join("mail").join(USER).join("new");
    std::fs::create_dir_all(&new).unwrap();
    for n in 0..emails {
        let (_, raw) = mails::notice(n, if n % 2 == 0 { "Ja" } else { "Nej" });
        std::fs::write(new.join(format!("{n:08}.bench.localhost")), raw).unwrap();
    }
    let status = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(world.dovecot.dir.join("mail"))
        .status()
        .unwrap();
    assert!(status.success());
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

async fn run(bin: &str, emails: usize, instances: usize) {
    let db = pg::PgDatabase::create().await.expect("PostgreSQL");
    let world = World::start().await;
    world
        .dovecot
        .create_folders(&[PROCESSED, IGNORED, QUARANTINED])
        .await;
    write_backlog(&world, emails);
    let mut settings = world.settings("batch_size = 50", EXTRA);
    settings.store.kind = tjid_intake::config::StoreKind::Postgres;
    settings.store.url = db.url.clone();
    // Migrate before the clock starts.
    drop(
        tjid_intake::store::Store::open(&settings.store)
            .await
            .unwrap(),
    );

    let names = ["a", "b", "c", "d", "e"];
    let mut daemons: Vec<instance::Instance> = names[..instances]
        .iter()
        .map(|n| instance::Instance::new(bin, n, &world, &db.url))
        .collect();
    let t0 = Instant::now();
    for d in &mut daemons {
        d.start();
    }
    // The time each reply was seen at the sink, polled every 50 ms.
    let mut seen: Vec<f64> = Vec::with_capacity(emails);
    let deadline = t0 + Duration::from_secs(3600);
    while seen.len() < emails {
        assert!(Instant::now() < deadline, "not every reply arrived");
        let count = world.smtp.count();
        let at = t0.elapsed().as_secs_f64();
        while seen.len() < count.min(emails) {
            seen.push(at);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = t0.elapsed().as_secs_f64();
    for d in &mut daemons {
        d.kill();
    }
    println!(
        "{instances} instance(s), {emails} emails: {total:.1} s, {:.0} emails/s; arrival → reply p50 {:.1} s, p95 {:.1} s",
        emails as f64 / total,
        pct(&seen, 0.50),
        pct(&seen, 0.95),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let emails = args.first().copied().unwrap_or(10_000);
    let counts: Vec<usize> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1, 3]
    };
    if !support::servers_available() {
        std::process::exit(1);
    }
    let bin = daemon_binary();
    for n in counts {
        run(&bin, emails, n.clamp(1, 5)).await;
    }
}
