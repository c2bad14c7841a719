//! Several instances on one mailbox (issue 11): `tjid-intake run` child processes on one
//! Dovecot mailbox, one throwaway PostgreSQL database and one aiosmtpd sink.
//!
//! - `lease_is_taken_over_after_its_holder_is_killed`: A holds the folder's lease and reads,
//!   B waits (serving /readyz and /metrics); A is SIGKILLed; B takes over within
//!   lease_secs (2) + 3 s and reads; a clean stop releases the lease.
//! - `three_daemons_killed_at_random_lose_nothing_and_say_nothing_twice`: three daemons,
//!   `TJID_INSTANCES_EMAILS` emails appended (default 1 000, as the issue asks),
//!   `TJID_INSTANCES_KILLS` SIGKILLs (default 30) of random daemons (the lease holder every
//!   other time), each restarted (about 70 s on 2 cores). Afterwards:
//!   every email has exactly one message row and is in exactly one outcome folder, every case
//!   has exactly one reply Message-ID at the SMTP sink, case numbers are 1..N
//!   without gaps or doubles, and the lease changed holder only after it ran out or was
//!   released (polled through `lease_state`). Replies taken by a killed instance are taken
//!   back when it restarts under its name (or after their 2-minute claim runs out).
//!   Exactly once at the sink: a reply is recorded as handed over just before SMTP's final
//!   `.` (src/sink/smtp.rs), so a kill before that commit leaves a transaction the server
//!   discards and a kill after it a reply that is never sent again. A doubled Message-ID
//!   fails the test.
//!
//! Needs Dovecot, aiosmtpd and PostgreSQL: fails under `CI=true` when one is missing, skips
//! loudly otherwise.

#[path = "support/instance.rs"]
mod instance;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/pg_server.rs"]
mod pg_server;
#[path = "support/mail_servers.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instance::Instance;
use support::{mails, wait_until, World, IGNORED, PROCESSED, QUARANTINED};
use tjid_intake::config::{Settings, StoreKind};
use tjid_intake::store::{CaseFilter, SettleHeld, Store};

const BIN: &str = env!("CARGO_BIN_EXE_tjid-intake");
const LEASE_SECS: u64 = 2;
/// No rate limit; a failed send is tried again within 2 s.
const EXTRA: &str = "[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n\
                     [outbox]\ninitial_backoff_secs = 1\nmax_backoff_secs = 2\n";

async fn setup() -> Option<(World, pg::PgDatabase, Settings, Store, String)> {
    if !support::servers_available() {
        return None;
    }
    let db = pg::PgDatabase::create().await?;
    let (world, settings, store, name) = setup_on(&db.url).await;
    Some((world, db, settings, store, name))
}

/// Dovecot with the outcome folders, aiosmtpd, and the daemons' settings on PostgreSQL at
/// `url`; the store opened (migrated) and the IMAP lease's name.
async fn setup_on(url: &str) -> (World, Settings, Store, String) {
    support::init_logging();
    let world = World::start().await;
    world
        .dovecot
        .create_folders(&[PROCESSED, IGNORED, QUARANTINED])
        .await;
    let mut settings = world.settings(
        &format!("lease_secs = {LEASE_SECS}\nbatch_size = 20"),
        EXTRA,
    );
    settings.store.kind = StoreKind::Postgres;
    settings.store.url = url.to_string();
    let store = Store::open(&settings.store).await.expect("open PostgreSQL");
    let name = tjid_intake::source::lease::lease_name(&settings.imap);
    (world, settings, store, name)
}

async fn holder(store: &Store, name: &str) -> Option<String> {
    let now = chrono::Utc::now().timestamp_millis();
    store
        .lease_state(name)
        .await
        .unwrap()
        .filter(|l| l.expires_at > now)
        .map(|l| l.holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_taken_over_after_its_holder_is_killed() {
    let Some((world, _db, _settings, store, lease)) = setup().await else {
        return;
    };
    let mut a = Instance::new(BIN, "a", &world, &_db.url);
    let mut b = Instance::new(BIN, "b", &world, &_db.url);
    a.start();
    wait_until(30, "A holds the lease", || async {
        holder(&store, &lease).await.as_deref() == Some("a")
    })
    .await;
    b.start();
    wait_until(30, "B serves /readyz", || async {
        b.get("/readyz").await.is_some()
    })
    .await;
    wait_until(10, "A's gauge at 1", || async {
        a.lease_gauge().await == Some(1.0)
    })
    .await;
    // B waits: several lease periods pass and A keeps it.
    tokio::time::sleep(Duration::from_secs(3 * LEASE_SECS)).await;
    assert_eq!(holder(&store, &lease).await.as_deref(), Some("a"));
    assert_eq!(b.lease_gauge().await, Some(0.0), "B's gauge is there, at 0");
    let (code, body) = b.get("/readyz").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("store: ok") && body.contains("lease: not held"),
        "{body}"
    );
    let (code, body) = a.get("/readyz").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("imap: connected") && body.contains("lease: held"),
        "{body}"
    );
    assert_eq!(a.get("/healthz").await.unwrap(), (200, "ok\n".to_string()));

    // `check` names the holder and the age of its renewal.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(world.config_path())
        .arg("check")
        .env("TJID__STORE__KIND", "postgres")
        .env("TJID__STORE__URL", &_db.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("database   postgres"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok    lease") && l.contains("held by a, renewed")),
        "{text}"
    );

    let mut client = world.dovecot.client().await;
    for n in 0..5 {
        world
            .dovecot
            .append(&mut client, "INBOX", &mails::notice(n, "Ja").1)
            .await;
    }
    wait_until(30, "A answers 5 emails", || async {
        world.smtp.count() == 5
    })
    .await;

    a.kill();
    let killed = Instant::now();
    wait_until(LEASE_SECS + 10, "B takes the lease", || async {
        holder(&store, &lease).await.as_deref() == Some("b")
    })
    .await;
    let took = killed.elapsed();
    eprintln!("B took over {} ms after A was killed", took.as_millis());
    assert!(
        took <= Duration::from_secs(LEASE_SECS + 3),
        "taken over after {took:?}"
    );
    wait_until(10, "B's gauge at 1", || async {
        b.lease_gauge().await == Some(1.0)
    })
    .await;
    for n in 5..10 {
        world
            .dovecot
            .append(&mut client, "INBOX", &mails::notice(n, "Ja").1)
            .await;
    }
    let _ = client.logout().await;
    wait_until(30, "B answers 5 more", || async {
        world.smtp.count() == 10
    })
    .await;
    assert_eq!(world.dovecot.count(PROCESSED).await, 10);

    // A clean stop gives the lease up at once.
    b.terminate();
    assert_eq!(store.lease_state(&lease).await.unwrap(), None);
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Watches the lease: a new holder must have taken it after the last seen expiry of the one
/// before, or after a release. Its first seen `expires_at - lease_secs` is the time of its
/// latest take or renewal, which is never before its take; so a legitimate takeover always
/// passes, and an early one is caught whenever it is seen before its first renewal (polled
/// every 20 ms, renewed every 667 ms).
fn watch_lease(
    store: Store,
    name: String,
    violations: Arc<Mutex<Vec<String>>>,
    changes: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let ttl_ms = (LEASE_SECS * 1000) as i64;
        let mut last: Option<tjid_intake::store::lease::Lease> = None;
        loop {
            match store.lease_state(&name).await {
                Ok(Some(now)) => {
                    if let Some(before) = &last {
                        if before.holder != now.holder {
                            changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if now.expires_at - ttl_ms < before.expires_at {
                                violations.lock().unwrap().push(format!(
                                    "{} took the lease at {} while {}'s ran until {}",
                                    now.holder,
                                    now.expires_at - ttl_ms,
                                    before.holder,
                                    before.expires_at
                                ));
                            }
                        }
                    }
                    last = Some(now);
                }
                Ok(None) => last = None,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_killed_at_random_lose_nothing_and_say_nothing_twice() {
    let Some((world, db, _settings, store, lease)) = setup().await else {
        return;
    };
    let emails = env_usize("TJID_INSTANCES_EMAILS", 1000);
    let kills = env_usize("TJID_INSTANCES_KILLS", 30);
    let started = Instant::now();
    let (all_ids, expected_cases) = append_backlog(&world, emails).await;
    eprintln!(
        "{emails} emails appended in {} ms",
        started.elapsed().as_millis()
    );

    let violations = Arc::new(Mutex::new(Vec::new()));
    let changes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = watch_lease(
        store.clone(),
        lease.clone(),
        Arc::clone(&violations),
        Arc::clone(&changes),
    );
    let mut daemons: Vec<Instance> = ["a", "b", "c"]
        .iter()
        .map(|n| Instance::new(BIN, n, &world, &db.url))
        .collect();
    for d in &mut daemons {
        d.start();
    }
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("instances test seed {seed}");
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for round in 0..kills {
        tokio::time::sleep(Duration::from_millis(150 + next() % 700)).await;
        // Every other kill hits the holder (the reader), the others any instance.
        let current = holder(&store, &lease).await;
        let victim = match (round % 2, &current) {
            (0, Some(h)) => daemons.iter().position(|d| &d.name == h).unwrap(),
            _ => (next() % 3) as usize,
        };
        daemons[victim].kill();
        eprintln!(
            "kill {round}: {} (holder {:?}) after {} ms; {} replies, {} in INBOX",
            daemons[victim].name,
            current,
            started.elapsed().as_millis(),
            world.smtp.count(),
            world.dovecot.count("INBOX").await
        );
        // Back at once (it takes its own lease again) or after the lease ran out (another
        // took it over).
        tokio::time::sleep(Duration::from_millis(next() % 3000)).await;
        daemons[victim].start();
    }
    eprintln!("kills done after {} ms", started.elapsed().as_millis());

    drain(&world, &store, emails, expected_cases.len()).await;
    eprintln!("drained after {} ms", started.elapsed().as_millis());
    watcher.abort();
    for d in &mut daemons {
        d.kill();
    }
    assert_each_once(&world, &store, &all_ids, &expected_cases).await;

    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "two holders at once: {violations:?}");
    eprintln!(
        "{emails} emails, {kills} kills, {} changes of lease holder: {} s in all",
        changes.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed().as_secs()
    );
}

/// PostgreSQL (a server of the test's own) crashes and comes back in the middle of a backlog
/// read by two daemons: they keep running, wait, and go on; nothing is lost or said twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_in_the_middle_of_a_backlog_loses_nothing() {
    if !support::servers_available() {
        return;
    }
    let Some(pg) = pg_server::PgServer::start() else {
        return;
    };
    let (world, _settings, store, _lease) = setup_on(&pg.url()).await;
    let emails = 150;
    let (all_ids, expected_cases) = append_backlog(&world, emails).await;
    let mut daemons: Vec<Instance> = ["a", "b"]
        .iter()
        .map(|n| Instance::new(BIN, n, &world, &pg.url()))
        .collect();
    for d in &mut daemons {
        d.start();
    }
    wait_until(120, "a third of the replies sent", || async {
        world.smtp.count() >= expected_cases.len() / 3
    })
    .await;
    pg.crash();
    let down = Instant::now();
    eprintln!("PostgreSQL down with {} replies sent", world.smtp.count());
    tokio::time::sleep(Duration::from_secs(5)).await;
    for d in &mut daemons {
        let status = d.child.as_mut().unwrap().try_wait().unwrap();
        assert!(
            status.is_none(),
            "{} exited while PostgreSQL was down: {status:?}",
            d.name
        );
    }
    let (code, body) = daemons[0].get("/readyz").await.expect("/readyz answers");
    assert_eq!(code, 503, "not ready without the store: {body}");
    pg.start_again();
    eprintln!("PostgreSQL back after {} ms", down.elapsed().as_millis());
    drain(&world, &store, emails, expected_cases.len()).await;
    for d in &mut daemons {
        assert!(
            d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "{} still runs",
            d.name
        );
        d.kill();
    }
    // A reply whose hand-over could not be committed (PostgreSQL down) never got its `.`;
    // one accepted after the commit stays sent though its answer could not be recorded.
    assert_each_once(&world, &store, &all_ids, &expected_cases).await;
}

/// PostgreSQL down when the daemon starts (issue 23): `/healthz` answers from the start,
/// `/readyz` is 503 "store: not reachable", the daemon keeps trying and goes on once the
/// server is up; with `[store] startup_wait_secs` it gives up after that long instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_before_postgresql_serves_healthz_and_waits_for_it() {
    if !support::servers_available() {
        return;
    }
    let Some(pg) = pg_server::PgServer::start() else {
        return;
    };
    let (world, _settings, store, _lease) = setup_on(&pg.url()).await;
    pg.crash();
    let mut a = Instance::new(BIN, "a", &world, &pg.url());
    a.start();
    wait_until(30, "A answers /healthz without its store", || async {
        a.get("/healthz").await.is_some_and(|(code, _)| code == 200)
    })
    .await;
    let (code, body) = a.get("/readyz").await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("store: not reachable"), "{body}");
    assert!(!body.contains("password"), "{body}");

    // Given a limit, an instance gives up after it (for a supervisor to restart it).
    let mut b = Instance::new(BIN, "b", &world, &pg.url());
    b.env
        .push(("TJID__STORE__STARTUP_WAIT_SECS".into(), "2".into()));
    b.start();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = b.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "B did not give up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "giving up is a failure: {status:?}");
    b.child = None;

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        a.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "A waits without a limit"
    );
    pg.start_again();
    wait_until(60, "A is ready once PostgreSQL is up", || async {
        a.get("/readyz").await.is_some_and(|(code, _)| code == 200)
    })
    .await;
    let (all_ids, expected_cases) = append_backlog(&world, 3).await;
    drain(&world, &store, all_ids.len(), expected_cases.len()).await;
    a.terminate();
    assert_each_once(&world, &store, &all_ids, &expected_cases).await;
}

/// Appends `emails` emails to INBOX: every tenth an auto-reply (ignored, no case), the rest
/// notices (queued or rejected). Returns every Message-ID and those that make a case.
async fn append_backlog(world: &World, emails: usize) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut expected_cases = BTreeSet::new();
    let mut all_ids = BTreeSet::new();
    let mut client = world.dovecot.client().await;
    for n in 0..emails {
        let (id, raw) = if n % 10 == 9 {
            mails::auto_reply(n)
        } else {
            let m = mails::notice(n, if n % 2 == 0 { "Ja" } else { "Nej" });
            expected_cases.insert(m.0.clone());
            m
        };
        all_ids.insert(id);
        world.dovecot.append(&mut client, "INBOX", &raw).await;
    }
    let _ = client.logout().await;
    assert_eq!(all_ids.len(), emails);
    (all_ids, expected_cases)
}

/// Waits until INBOX is empty, every email has its message row and every reply is sent (its
/// answer recorded) or held; plays staff for the replies held in doubt (`resolve_in_doubt`); then waits until
/// every case has a reply at the sink. A killed instance restarted under its name takes back
/// its claims, and holds the replies it handed over without an answer, at once.
///
/// An email that was in flight at two kills is quarantined by the poison protection (issue 20:
/// its attempts never finished), not answered: it is in the quarantine folder for staff, and
/// counts as settled here.
async fn drain(world: &World, store: &Store, emails: usize, cases: usize) {
    wait_until(200, "the backlog and the outbox settled", || async {
        if world.dovecot.count("INBOX").await != 0 {
            return false;
        }
        let quarantined = world.dovecot.message_ids(QUARANTINED).await.len();
        store.counts().await.is_ok_and(|c| {
            c.outbox_pending == 0
                && c.outbox_awaiting == 0
                && c.messages as usize == emails
                && (c.outbox_sent + c.outbox_held) as usize + quarantined >= cases
        })
    })
    .await;
    let (held, released) = resolve_in_doubt(world, store).await;
    eprintln!("{held} replies held in doubt, {released} of them not at the server and released");
    let quarantined = world.dovecot.message_ids(QUARANTINED).await.len();
    wait_until(60, "every case answered at the sink", || async {
        store
            .counts()
            .await
            .is_ok_and(|c| c.outbox_pending == 0 && c.outbox_held == 0)
            && world.smtp.count() + quarantined >= cases
    })
    .await;
    // Late doubles would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Staff's part for the replies held in doubt (their daemon died between the hand-over and
/// the server's recorded answer): a reply the SMTP server has, as its log would show, is
/// marked as delivered; one it never got is released and goes out. Returns (held, released).
async fn resolve_in_doubt(world: &World, store: &Store) -> (usize, usize) {
    let at_server: BTreeSet<String> = world
        .smtp
        .received()
        .iter()
        .filter_map(|r| r.header("Message-ID"))
        .collect();
    let held = store.held_replies(1000, 0).await.unwrap();
    let mut released = 0;
    for h in &held {
        let why = h.last_error.as_deref().unwrap_or("");
        assert!(
            why.starts_with(tjid_intake::store::IN_DOUBT),
            "no rate limit here: {why}"
        );
        let detail = store.case_detail(&h.case_id).await.unwrap().unwrap();
        let reply = detail.replies.iter().find(|r| r.id == h.id).unwrap();
        let message_id = mail_parser::MessageParser::default()
            .parse(reply.raw.as_bytes())
            .and_then(|m| m.message_id().map(|id| format!("<{id}>")))
            .expect("the reply's Message-ID");
        let n = if at_server.contains(&message_id) {
            store
                .settle_held(&h.case_id, Some(&h.id), "staff", 1, SettleHeld::Delivered)
                .await
        } else {
            released += 1;
            store
                .release_held(&h.case_id, Some(&h.id), "staff", 1)
                .await
        };
        assert_eq!(n.unwrap(), 1);
    }
    (held.len(), released)
}

/// One message row and one outcome folder per email, one case per expected case numbered
/// 1..N without gaps or doubles, and exactly one reply per case at the SMTP sink.
async fn assert_each_once(
    world: &World,
    store: &Store,
    all_ids: &BTreeSet<String>,
    expected_cases: &BTreeSet<String>,
) {
    // One message row per email.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts.messages as usize,
        all_ids.len(),
        "one message row per email"
    );
    // Exactly one outcome folder per email, nothing left behind.
    assert_eq!(world.dovecot.count("INBOX").await, 0);
    let mut in_folders: BTreeMap<String, usize> = BTreeMap::new();
    for folder in [PROCESSED, IGNORED, QUARANTINED] {
        for id in world.dovecot.message_ids(folder).await {
            *in_folders.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        &in_folders.keys().cloned().collect::<BTreeSet<_>>(),
        all_ids
    );
    let doubled: Vec<_> = in_folders.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        doubled.is_empty(),
        "emails in more than one place: {doubled:?}"
    );

    // Emails in flight at two kills are quarantined (poison protection), never answered.
    let quarantined: BTreeSet<String> = world
        .dovecot
        .message_ids(QUARANTINED)
        .await
        .into_iter()
        .collect();
    if !quarantined.is_empty() {
        eprintln!(
            "{} email(s) quarantined after two interrupted attempts",
            quarantined.len()
        );
    }
    assert!(quarantined.len() <= 10, "{quarantined:?}");
    let expected_cases: &BTreeSet<String> =
        &expected_cases.difference(&quarantined).cloned().collect();

    // One case per notice, numbered 1..N without gaps or doubles.
    let cases = store
        .list_cases(&CaseFilter {
            limit: 0,
            ..CaseFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(cases.len(), expected_cases.len());
    let mut numbers: Vec<u64> = cases
        .iter()
        .map(|c| c.id.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=expected_cases.len() as u64).collect::<Vec<_>>()
    );

    // One reply per case at the SMTP sink: one Message-ID per case, every case answered.
    let received = world.smtp.received();
    let reply_ids: BTreeSet<String> = received
        .iter()
        .map(|r| r.header("Message-ID").unwrap_or_default())
        .collect();
    let answered: Vec<String> = received
        .iter()
        .map(|r| r.header("In-Reply-To").unwrap_or_default())
        .collect();
    let answered_set: BTreeSet<String> = answered.iter().cloned().collect();
    assert_eq!(&answered_set, expected_cases, "every case answered");
    assert_eq!(
        reply_ids.len(),
        expected_cases.len(),
        "one reply (one Message-ID) per case"
    );
    assert_eq!(
        received.len(),
        reply_ids.len(),
        "no reply at the sink twice (same Message-ID)"
    );
}

/// `/readyz` names what fails (issue 13): with the SMTP server down, the instance is still
/// ready (the staff pages work) but says `degraded: sink`, with the time it started failing;
/// once the server is back and a reply goes out, the sink is `ok` again. Nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_failing_sink_and_its_recovery() {
    let Some((mut world, db, _settings, store, _lease)) = setup().await else {
        return;
    };
    world.smtp.stop();
    let mut a = Instance::new(BIN, "a", &world, &db.url);
    a.start();
    // Ready once its store and sources are up (a first answer may come while they start).
    wait_until(30, "A is ready with its sink not used yet", || async {
        a.get("/readyz")
            .await
            .is_some_and(|(code, body)| code == 200 && body.contains("sink: smtp, not used yet"))
    })
    .await;

    let (all_ids, expected_cases) = append_backlog(&world, 3).await;
    wait_until(60, "/readyz names the failing sink", || async {
        a.get("/readyz").await.is_some_and(|(code, body)| {
            code == 200
                && body.starts_with("ready, degraded: sink\n")
                && body.contains("sink: smtp, failing since ")
        })
    })
    .await;
    let (_, body) = a.get("/metrics").await.unwrap();
    assert!(body.contains("# HELP tjid_sink_up"), "{body}");
    assert!(body.contains("\ntjid_outbox_held 0\n"), "{body}");
    assert!(body.contains("\ntjid_outbox_awaiting_answer 0\n"), "{body}");
    assert!(body.lines().any(|l| l == "tjid_sink_up 0"), "{body}");

    world.smtp.spawn().await;
    drain(&world, &store, all_ids.len(), expected_cases.len()).await;
    wait_until(30, "/readyz says the sink is back", || async {
        a.get("/readyz").await.is_some_and(|(code, body)| {
            code == 200 && body.starts_with("ready\n") && body.contains("sink: smtp, ok since ")
        })
    })
    .await;
    a.terminate();
    assert_each_once(&world, &store, &all_ids, &expected_cases).await;
}
