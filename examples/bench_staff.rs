//! Staff pages at scale (issue 25): fills a store with N cases spread over three years (three in
//! four rejected, as an office's store after some years; some ordered, handed out, held,
//! deregistrations, confirmed rejections) and times the store queries behind each staff page —
//! every page's navigation counts, Översikt, Avvisade (first page, filtered by unit and by
//! reason, page 500), Att beställa, Att avregistrera, Att granska, Avslutade, Spärrade svar,
//! Ignorerat, the search (a name, a case number and its tail, no hit) and a case page — one
//! caller at a time and four at once. `--purge` then runs the first purge of the never-purged
//! store (90 days for rejections) and times pages and `/readyz`'s store check while it runs.
//!
//!     cargo run --release --example bench_staff -- --cases 50000 [--postgres URL] [--purge]
//!
//! The figures are the database's part of a page (rendering adds well under a millisecond).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tjid_intake::case::{CaseContext, CaseKind, CheckedCase, Fields, Finding, ReasonCode};
use tjid_intake::store::{CaseFilter, MailRecord, RetentionPolicy, Store};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 50_000)]
    cases: usize,
    /// URL of an empty PostgreSQL database (default: a SQLite file in a temporary directory).
    #[arg(long)]
    postgres: Option<String>,
    /// Timed calls of each page.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Then run the first purge and time pages while it runs.
    #[arg(long)]
    purge: bool,
}

const FIRST: [&str; 8] = [
    "Anna", "Örjan", "Åsa", "Lars", "Karin", "Mohammed", "Eva", "Håkan",
];
const LAST: [&str; 16] = [
    "Svensson",
    "Håkansson",
    "Lindqvist",
    "Berg",
    "Al-Rashid",
    "Öhman",
    "Nilsson",
    "Ekström",
    "Johansson",
    "Karlsson",
    "Persson",
    "Olsson",
    "Gustafsson",
    "Pettersson",
    "Jönsson",
    "Lindberg",
];

fn case(i: usize) -> CheckedCase {
    let fields = Fields(vec![
        ("fornamn", Some(FIRST[i % FIRST.len()].to_string())),
        ("efternamn", Some(LAST[(i / 8) % LAST.len()].to_string())),
        (
            "vardenhet_namn",
            Some(format!("Vårdcentralen Enhet {}", i % 300)),
        ),
        (
            "vardenhet_hsaid",
            Some(format!("SE2321000131-E{:012}", i % 300)),
        ),
        ("vardgivare_orgnr", Some("232100-0131".into())),
        ("epost", Some(format!("person{i}@vgregion.se"))),
    ]);
    let reasons = match i % 8 {
        0 | 4 => Vec::new(),
        3 => vec![Finding::new(ReasonCode::SenderNotManager, None)],
        _ => vec![Finding::new(
            ReasonCode::PersonNotInKiv,
            Some("personnummer"),
        )],
    };
    CheckedCase::new(
        CaseKind::Order,
        reasons,
        Vec::new(),
        fields,
        CaseContext::default(),
    )
}

fn mail(i: usize, now: i64) -> MailRecord {
    MailRecord {
        source_ref: format!("bench:{i}"),
        message_id: Some(format!("<{i}@bench.example>")),
        content_hash: format!("{i:x}"),
        received_at: now,
        email_date: None,
        sender: Some("chef@vgregion.se".into()),
        subject: format!("Beställning {i}"),
        headers: String::new(),
        ignored: None,
        error: None,
        bounce: None,
    }
}

type Query = Box<dyn Fn(Store) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

fn page<F, Fut>(f: F) -> Query
where
    F: Fn(Store) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Box::new(move |s: Store| {
        let fut = f(s.clone());
        // Every page shows the lists' counts in its navigation.
        Box::pin(async move {
            s.queue_counts().await.unwrap();
            fut.await
        })
    })
}

fn list(state: &str) -> CaseFilter {
    CaseFilter {
        state: Some(state.into()),
        limit: 50,
        ..CaseFilter::default()
    }
}

/// One list section: a page of it and its count.
async fn section(s: &Store, f: CaseFilter) {
    s.list_cases(&f).await.unwrap();
    s.count_cases(&f).await.unwrap();
}

/// Avvisade: the unit filter's choices, then the section.
async fn rejected(s: Store, f: CaseFilter) {
    s.case_units(&list("rejected")).await.unwrap();
    section(&s, f).await;
}

fn search(q: String) -> Query {
    page(move |s: Store| {
        let q = q.clone();
        async move { s.search(&q, 51, 0).await.map(drop).unwrap() }
    })
}

fn queries(first_case: String, middle_case: String, unit: String) -> Vec<(&'static str, Query)> {
    let tail = middle_case.rsplit('-').next().unwrap_or("1").to_string();
    let tail = tail.trim_start_matches('0').to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let closed = move |offset: i64, period: bool| CaseFilter {
        closed: true,
        limit: 50,
        offset,
        changed_from: period.then_some(now - 400 * 86_400_000),
        changed_before: period.then_some(now - 370 * 86_400_000),
        ..CaseFilter::default()
    };
    vec![
        ("navigation counts (every page)", page(|_| async {})),
        (
            "Översikt",
            page(|s: Store| async move {
                s.queue_counts().await.unwrap();
                s.oldest_waiting().await.unwrap();
                s.received_since(chrono::Utc::now().timestamp_millis() - 86_400_000)
                    .await
                    .unwrap();
            }),
        ),
        (
            "Avvisade, first page",
            page(|s: Store| rejected(s, list("rejected"))),
        ),
        (
            "Avvisade, one unit",
            page(move |s: Store| {
                let f = CaseFilter {
                    unit: Some(unit.clone()),
                    ..list("rejected")
                };
                rejected(s, f)
            }),
        ),
        (
            "Avvisade, one reason (sender_not_manager)",
            page(|s: Store| {
                let f = CaseFilter {
                    reason: Some("sender_not_manager".into()),
                    ..list("rejected")
                };
                rejected(s, f)
            }),
        ),
        (
            "Avvisade, page 500",
            page(|s: Store| {
                let f = CaseFilter {
                    offset: 499 * 50,
                    ..list("rejected")
                };
                rejected(s, f)
            }),
        ),
        (
            "Att beställa (three sections)",
            page(|s: Store| async move {
                for st in ["queued", "ordered_at_telia", "card_ready"] {
                    let f = CaseFilter {
                        kind: Some("order".into()),
                        oldest_first: true,
                        ..list(st)
                    };
                    section(&s, f).await;
                }
            }),
        ),
        (
            "Att avregistrera",
            page(|s: Store| async move {
                let f = CaseFilter {
                    kind: Some("deregistration".into()),
                    ..list("queued")
                };
                section(&s, f).await;
            }),
        ),
        (
            "Att granska",
            page(|s: Store| async move {
                let f = CaseFilter {
                    oldest_first: true,
                    ..list("held")
                };
                section(&s, f).await;
            }),
        ),
        (
            "Avslutade, first page",
            page(move |s: Store| async move { section(&s, closed(0, false)).await }),
        ),
        (
            "Avslutade, page 50",
            page(move |s: Store| async move { section(&s, closed(49 * 50, false)).await }),
        ),
        (
            "Avslutade, one month a year ago",
            page(move |s: Store| async move { section(&s, closed(0, true)).await }),
        ),
        (
            "Spärrade svar",
            page(|s: Store| async move { s.held_replies(51, 0).await.map(drop).unwrap() }),
        ),
        (
            "Ignorerat och karantän",
            page(|s: Store| async move { s.unprocessed_mail(51, 0).await.map(drop).unwrap() }),
        ),
        ("search a name (Svensson)", search("Svensson".into())),
        (
            "search a name without diacritics (hakansson orjan)",
            search("hakansson orjan".into()),
        ),
        ("search a case number", search(middle_case)),
        ("search a case number's tail", search(tail)),
        ("search with no hit", search("Zzyzxqvist".into())),
        (
            "a case page",
            page(move |s: Store| {
                let id = first_case.clone();
                async move { s.case_detail(&id).await.map(drop).unwrap() }
            }),
        ),
    ]
}

/// p50 and p95 of `samples`.
fn quantiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Moves some cases on, as three years of work would have: the statements run beside the
/// store, on the same database.
async fn age(store: &Store, args: &Args, db: &std::path::Path) -> anyhow::Result<()> {
    let statements = [
        "UPDATE cases SET state = 'ordered_at_telia' WHERE id IN (SELECT id FROM cases WHERE state = 'queued' ORDER BY created_at DESC LIMIT 300)",
        "UPDATE cases SET state = 'card_ready' WHERE id IN (SELECT id FROM cases WHERE state = 'queued' ORDER BY created_at DESC LIMIT 200)",
        "UPDATE cases SET state = 'handed_out' WHERE id IN (SELECT id FROM cases WHERE state = 'queued' ORDER BY created_at LIMIT 480)",
        "UPDATE cases SET kind = 'deregistration' WHERE id IN (SELECT id FROM cases WHERE state = 'queued' ORDER BY created_at DESC LIMIT 160)",
        "UPDATE cases SET state = 'held' WHERE id IN (SELECT id FROM cases WHERE state = 'rejected' ORDER BY created_at DESC LIMIT 100)",
        "UPDATE cases SET state = 'rejection_confirmed' WHERE id IN (SELECT id FROM cases WHERE state = 'rejected' AND (id LIKE '%0' OR id LIKE '%5'))",
    ];
    match &args.postgres {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await?;
            for q in statements {
                sqlx::raw_sql(q).execute(&pool).await?;
            }
            // The state a server with autovacuum (or a nightly ANALYZE) would be in.
            sqlx::raw_sql("ANALYZE").execute(&pool).await?;
            pool.close().await;
        }
        None => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            for q in statements {
                sqlx::raw_sql(q).execute(&pool).await?;
            }
            pool.close().await;
        }
    }
    let _ = store;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("staff.db");
    let store = match &args.postgres {
        Some(url) => Store::open_postgres(url).await?,
        None => Store::open_sqlite(&db).await?,
    };
    // Three years, oldest first.
    let now = chrono::Utc::now().timestamp_millis();
    let step = 3 * 365 * 86_400_000 / args.cases.max(1) as i64;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(args.cases);
    let no_reply = |_: &CheckedCase, _: &str, _: &str| None;
    for i in 0..args.cases {
        let at = now - (args.cases - i) as i64 * step;
        let recorded = store
            .record(&mail(i, at), &[case(i)], &no_reply, at)
            .await?;
        if let tjid_intake::store::Recorded::Processed { case_ids, .. } = recorded {
            ids.extend(case_ids);
        }
    }
    age(&store, &args, &db).await?;
    println!(
        "{} store, {} cases recorded in {:.1} s; Avvisade holds {}",
        store.kind(),
        ids.len(),
        started.elapsed().as_secs_f64(),
        store.count_cases(&list("rejected")).await?
    );
    let (first, middle) = (ids[0].clone(), ids[ids.len() / 2].clone());
    let unit = format!("SE2321000131-E{:012}", 7);
    let queries = Arc::new(queries(first, middle, unit));
    println!(
        "{:<52} {:>10} {:>10} {:>14} {:>10}",
        "page", "1: p50", "1: p95", "4 at once: p50", "p95"
    );
    for (n, (name, query)) in queries.iter().enumerate() {
        let mut alone = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            query(store.clone()).await;
            alone.push(t.elapsed());
        }
        let together = futures::future::join_all((0..4).map(|_| {
            let (store, queries) = (store.clone(), queries.clone());
            tokio::spawn(async move {
                let mut own = Vec::new();
                for _ in 0..args.runs / 4 + 1 {
                    let t = Instant::now();
                    (queries[n].1)(store.clone()).await;
                    own.push(t.elapsed());
                }
                own
            })
        }))
        .await
        .into_iter()
        .flat_map(|r| r.unwrap_or_default())
        .collect();
        let ((a50, a95), (t50, t95)) = (quantiles(alone), quantiles(together));
        println!(
            "{name:<52} {:>10} {:>10} {:>14} {:>10}",
            ms(a50),
            ms(a95),
            ms(t50),
            ms(t95)
        );
    }
    if args.purge {
        purge_while_paging(&store, queries).await?;
    }
    Ok(())
}

/// The first purge of the never-purged store (rejections kept 90 days), with every page and
/// `/readyz`'s store check timed over and over, one caller, while it runs.
async fn purge_while_paging(
    store: &Store,
    queries: Arc<Vec<(&'static str, Query)>>,
) -> anyhow::Result<()> {
    let day = 86_400_000;
    let policy = RetentionPolicy {
        ignored_ms: 30 * day,
        quarantined_ms: 90 * day,
        rejected_ms: 90 * day,
        completed_ms: 730 * day,
    };
    let started = Instant::now();
    let purge = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .purge(&policy, chrono::Utc::now().timestamp_millis())
                .await
        })
    };
    let mut pages: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
    let mut ready = Vec::new();
    while !purge.is_finished() {
        for (n, (_, query)) in queries.iter().enumerate() {
            let t = Instant::now();
            query(store.clone()).await;
            pages[n].push(t.elapsed());
        }
        let t = Instant::now();
        store.server_version().await?;
        ready.push(t.elapsed());
    }
    let report = purge.await??;
    println!(
        "\nfirst purge: {} rejected and {} completed cases in {:.1} s; Avvisade holds {} after it",
        report.rejected_cases,
        report.completed_cases,
        started.elapsed().as_secs_f64(),
        store.count_cases(&list("rejected")).await?
    );
    println!(
        "{:<52} {:>10} {:>10} {:>10}",
        "during the purge", "p50", "p95", "max"
    );
    let mut rows: Vec<(&str, Vec<Duration>)> =
        queries.iter().map(|(name, _)| *name).zip(pages).collect();
    rows.push(("/readyz store check", ready));
    for (name, samples) in rows {
        if samples.is_empty() {
            continue;
        }
        let max = samples.iter().max().copied().unwrap_or_default();
        let (p50, p95) = quantiles(samples);
        println!("{name:<52} {:>10} {:>10} {:>10}", ms(p50), ms(p95), ms(max));
    }
    Ok(())
}
