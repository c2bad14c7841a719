//! Throughput benchmark: generates N digital-form emails into a Maildir and processes them the
//! way `run` does (parallel analysis, one SQLite transaction per email, acknowledgement, reply
//! files), then prints throughput, per-email latency and peak memory.
//!
//!     cargo run --release --example bench -- --config tests/golden.toml --emails 10000 [--logos]
//!
//! The binary's allocator (mimalloc) is used here too, so the figures are the daemon's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use tjid_intake::config::Settings;
use tjid_intake::forms::spec::FormKind;
use tjid_intake::pipeline::{Intake, Order, Recorder};
use tjid_intake::sink::{FileSink, ReplySink};
use tjid_intake::source::Input;
use tjid_intake::source::Maildir;
use tjid_intake::store::Store;
use tjid_testkit::mime::{build, MailSpec};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure throughput: generate N emails into a Maildir and process them.
#[derive(Parser)]
struct Args {
    /// Configuration file (default: config/default.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 10_000)]
    emails: usize,
    /// Work directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Every third email also carries a signature logo (a 160×48 PNG), as Outlook adds.
    #[arg(long)]
    logos: bool,
    /// Read attachments in this process instead of in worker processes (`run` and `process`
    /// use workers: `tjid-intake worker`, built beside this example).
    #[arg(long)]
    in_process: bool,
}

fn main() -> ExitCode {
    tjid_intake::directory::ldap::install_crypto_provider();
    let args = Args::parse();
    let result = (|| -> anyhow::Result<()> {
        let settings = Settings::load(args.config.as_deref())?;
        tjid_intake::telemetry::init(&settings.log);
        tjid_intake::net::tls::install_default_provider();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(
                settings,
                args.emails,
                args.dir,
                args.logos,
                args.in_process,
            ))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(
    mut settings: Settings,
    emails: usize,
    dir: Option<PathBuf>,
    logos: bool,
    in_process: bool,
) -> anyhow::Result<()> {
    if !in_process {
        // target/<profile>/examples/bench → target/<profile>/tjid-intake
        let exe = std::env::current_exe()?;
        let program = exe
            .parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("tjid-intake"))
            .filter(|p| p.exists())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "build the binary first (cargo build --release), or pass --in-process"
                )
            })?;
        let workers = match settings.ocr.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        tjid_intake::pipeline::worker::enable(tjid_intake::pipeline::worker::WorkerSettings {
            program,
            workers,
            memory_mb: settings.limits.worker_memory_mb,
            cpu_per_attachment: std::time::Duration::from_secs(settings.limits.worker_cpu_secs),
            recycle_after: settings.limits.worker_recycle_after,
            log: settings.log.clone(),
        });
    }
    let temp;
    let dir = match dir {
        Some(d) => d,
        None => {
            temp = tempfile_dir()?;
            temp.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    settings.store.sqlite = dir.join("bench.db");
    settings.sink.dir = dir.join("outbox");
    // Every generated email comes from the same manager: the per-recipient rate limit, which
    // is there to break loops with robots, would hold all but the first replies.
    settings.rate_limit.max_per_window = 0;
    settings.rate_limit.max_per_day = 0;
    let maildir_path = dir.join("maildir");
    let maildir = Maildir::create(&maildir_path)?;

    eprintln!("generating {emails} emails in {}", maildir_path.display());
    let pdfs = sample_pdfs()?;
    let logo = signature_logo()?;
    for i in 0..emails {
        let (name, pdf) = &pdfs[i % pdfs.len()];
        let mut spec = MailSpec::new(
            "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
            &format!("Blankett {i}"),
            &format!("<bench-{i}@vgregion.se>"),
            "Wed, 18 Nov 2026 10:00:00 +0100",
        )
        .attach_pdf(name, pdf.clone());
        if logos && i % 3 == 0 {
            spec.parts.push(tjid_testkit::mime::Part::File {
                name: "image001.png".into(),
                content_type: "image/png".into(),
                data: logo.clone(),
                encoding: tjid_testkit::mime::NameEncoding::Plain,
            });
        }
        std::fs::write(
            maildir_path
                .join("new")
                .join(format!("{:010}.bench{i}.eml", i)),
            build(&spec),
        )?;
    }

    let store = Store::open_sqlite(&settings.store.sqlite).await?;
    let sink = ReplySink::File(FileSink::open(&settings.sink.dir)?);
    let outbox = settings.outbox.clone();
    // The benchmark sends every reply to one address: the loop guard would hold most of them.
    let settings_rate = tjid_intake::config::RateLimitSettings {
        max_per_window: 0,
        window_secs: 600,
        max_per_day: 0,
    };
    let intake = Arc::new(Intake::load(settings.intake_parts())?);
    let recorder = Recorder::Store(store.clone());

    let mut latencies: Vec<f64> = Vec::with_capacity(emails);
    let started = Instant::now();
    loop {
        let files = maildir.list("new")?;
        if files.is_empty() {
            break;
        }
        let mut inputs = Vec::new();
        for path in files.into_iter().take(512) {
            let raw = std::fs::read(&path)?;
            inputs.push(Input {
                display: path.display().to_string(),
                source_ref: Maildir::source_ref(&path),
                raw,
                oversized: None,
            });
        }
        let batch_started = Instant::now();
        let report = intake
            .process_batch(inputs, Order::Arrival, &recorder, |input, _| {
                latencies.push(batch_started.elapsed().as_secs_f64());
                maildir.acknowledge(std::path::Path::new(&input.display), "S")?;
                Ok(())
            })
            .await?;
        // Emails that wait for KIV stay in new/: stop rather than go round forever.
        if !report.waiting.is_empty() {
            anyhow::bail!(
                "{} email(s) wait for KIV, which cannot be reached",
                report.waiting.len()
            );
        }
    }
    let processed = started.elapsed().as_secs_f64();
    let report = tjid_intake::outbox::deliver_due(&store, &sink, &outbox, &settings_rate).await?;
    let total = started.elapsed().as_secs_f64();

    // Per-email time: the gap between consecutive commits (what one email costs in the
    // steady state of the pipeline).
    let mut per_email: Vec<f64> = latencies
        .windows(2)
        .map(|w| (w[1] - w[0]).max(0.0))
        .collect();
    per_email.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        per_email
            .get(((per_email.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    let counts = store.counts().await?;
    println!("emails:              {emails}");
    println!(
        "attachments read:    {}",
        if in_process {
            "in this process"
        } else {
            "in worker processes"
        }
    );
    if logos {
        println!("signature logos:     on every third email");
    }
    println!("cases:               {}", counts.cases);
    println!("replies written:     {}", report.sent);
    println!(
        "processing:          {processed:.2} s  ({:.0} emails/s, stored and acknowledged)",
        emails as f64 / processed
    );
    println!(
        "with reply delivery: {total:.2} s  ({:.0} emails/s end to end)",
        emails as f64 / total
    );
    println!(
        "time per email:      p50 {:.3} ms  p95 {:.3} ms",
        pct(0.5),
        pct(0.95)
    );
    println!("peak RSS:            {} MB", peak_rss_kb() / 1024);
    Ok(())
}

fn sample_pdfs() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let order = example_values(FormKind::Order);
    let dereg = example_values(FormKind::Deregistration);
    let mut incomplete = order.clone();
    incomplete.remove("mobil");
    let one = |kind, layout, values| {
        render(&[FilledForm {
            kind,
            layout,
            values,
        }])
    };
    Ok(vec![
        (
            "bestallning.pdf".into(),
            one(FormKind::Order, Layout::SameLine, &order)?,
        ),
        (
            "bestallning-ifylld.pdf".into(),
            one(FormKind::Order, Layout::Fillable, &order)?,
        ),
        (
            "avregistrering.pdf".into(),
            one(FormKind::Deregistration, Layout::Table, &dereg)?,
        ),
        (
            "bestallning-ofullstandig.pdf".into(),
            one(FormKind::Order, Layout::SameLine, &incomplete)?,
        ),
    ])
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tjid-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A signature logo as mail clients add it: a small PNG with some ink (SPEC §2.1: too small to
/// hold a form page, so it must cost no recognition).
fn signature_logo() -> anyhow::Result<Vec<u8>> {
    let logo = image::GrayImage::from_fn(160, 48, |x, y| {
        image::Luma([if (x / 8 + y / 8) % 3 == 0 { 30 } else { 250 }])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    logo.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}
