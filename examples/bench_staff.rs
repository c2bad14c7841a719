//! Staff pages at scale (issue 25): fills a store with N cases (three in four rejected, as an
//! office's store after some years) and times the store queries behind each staff page — the
//! search by a name, by a case number and its tail, and with no hit; Avvisade's first and
//! 500th page with its count; a case page — one caller at a time and four at once.
//!
//!     cargo run --release --example bench_staff -- --cases 50000 [--postgres URL]
//!
//! The figures are the database's part of a page (rendering adds well under a millisecond).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tjid_intake::case::{CaseContext, CaseKind, CheckedCase, Fields, Finding, ReasonCode};
use tjid_intake::store::{CaseFilter, MailRecord, Store};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 50_000)]
    cases: usize,
    /// URL of an empty PostgreSQL database (default: a SQLite file in a temporary directory).
    #[arg(long)]
    postgres: Option<String>,
    /// Timed calls of each query.
    #[arg(long, default_value_t = 40)]
    runs: usize,
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
    let reasons = if i.is_multiple_of(4) {
        Vec::new()
    } else {
        vec![Finding::new(
            ReasonCode::PersonNotInKiv,
            Some("personnummer"),
        )]
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

/// p50 and p95 of `samples`.
fn quantiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

type Query = Box<dyn Fn(Store) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

fn queries(first_case: String, middle_case: String) -> Vec<(&'static str, Query)> {
    let rejected = |offset: i64| CaseFilter {
        state: Some("rejected".into()),
        limit: 51,
        offset,
        ..CaseFilter::default()
    };
    let tail = middle_case.rsplit('-').next().unwrap_or("1").to_string();
    let tail = tail.trim_start_matches('0').to_string();
    vec![
        (
            "search a name (Svensson)",
            Box::new(|s: Store| {
                Box::pin(async move { s.search("Svensson", 51, 0).await.map(drop).unwrap() }) as _
            }),
        ),
        (
            "search a name without diacritics (hakansson orjan)",
            Box::new(|s: Store| {
                Box::pin(async move { s.search("hakansson orjan", 51, 0).await.map(drop).unwrap() })
                    as _
            }),
        ),
        (
            "search a case number",
            Box::new(move |s: Store| {
                let id = middle_case.clone();
                Box::pin(async move { s.search(&id, 51, 0).await.map(drop).unwrap() }) as _
            }),
        ),
        (
            "search a case number's tail",
            Box::new(move |s: Store| {
                let t = tail.clone();
                Box::pin(async move { s.search(&t, 51, 0).await.map(drop).unwrap() }) as _
            }),
        ),
        (
            "search with no hit",
            Box::new(|s: Store| {
                Box::pin(async move { s.search("Zzyzxqvist", 51, 0).await.map(drop).unwrap() }) as _
            }),
        ),
        (
            "Avvisade, first page and count",
            Box::new(move |s: Store| {
                let f = rejected(0);
                Box::pin(async move {
                    s.list_cases(&f).await.unwrap();
                    s.count_cases(&f).await.unwrap();
                }) as _
            }),
        ),
        (
            "Avvisade, page 500",
            Box::new(move |s: Store| {
                let f = rejected(500 * 50);
                Box::pin(async move { s.list_cases(&f).await.map(drop).unwrap() }) as _
            }),
        ),
        (
            "a case page",
            Box::new(move |s: Store| {
                let id = first_case.clone();
                Box::pin(async move { s.case_detail(&id).await.map(drop).unwrap() }) as _
            }),
        ),
    ]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = match &args.postgres {
        Some(url) => Store::open_postgres(url).await?,
        None => Store::open_sqlite(&dir.path().join("staff.db")).await?,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(args.cases);
    let no_reply = |_: &CheckedCase, _: &str, _: &str| None;
    for i in 0..args.cases {
        let recorded = store
            .record(&mail(i, now), &[case(i)], &no_reply, now)
            .await?;
        if let tjid_intake::store::Recorded::Processed { case_ids } = recorded {
            ids.extend(case_ids);
        }
    }
    println!(
        "{} store, {} cases recorded in {:.1} s",
        store.kind(),
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let (first, middle) = (ids[0].clone(), ids[ids.len() / 2].clone());
    let queries = Arc::new(queries(first, middle));
    println!(
        "{:<52} {:>10} {:>10} {:>12} {:>12}",
        "query", "1: p50", "1: p95", "4 at once: p50", "p95"
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
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{name:<52} {:>10} {:>10} {:>12} {:>12}",
            ms(a50),
            ms(a95),
            ms(t50),
            ms(t95)
        );
    }
    Ok(())
}
