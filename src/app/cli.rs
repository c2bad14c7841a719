//! The command line. Errors print as a chain of causes on standard error, without backtraces.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::case::EmailOutcome;
use crate::casework::lifecycle::{Action, LifecycleError, Request};
use crate::clock::format_ms;
use crate::config::Settings;
use crate::pipeline::reply::ReplySettings;
use crate::pipeline::{DryRun, Intake, Order, Recorder};
use crate::sink::ReplySink;
use crate::store::{CaseFilter, SettleHeld, Store};

#[derive(Parser)]
#[command(
    name = "tjid-intake",
    version,
    about = "Mail intake for TjänsteID-service (eTjänstekort)"
)]
pub struct Cli {
    /// Configuration file (default: config/default.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: take mail from the configured source (Maildir or IMAP), process it, deliver replies.
    Run,
    /// Process .eml files, directories of them, or Maildirs once.
    Process {
        /// Store nothing and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per email on standard output.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Staff's view of the cases.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Staff users of the review pages.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The register of connected care providers (the staff page "Anslutna vårdgivare").
    Providers {
        #[command(subcommand)]
        command: crate::app::providers_cli::ProvidersCommand,
    },
    /// Erase personal data whose retention ran out ([retention]); keeps a minimal case shell.
    Purge,
    /// Copy the SQLite store into FILE while the daemon runs (a consistent online copy). To
    /// restore: stop the daemon and put FILE at `[store] sqlite`. PostgreSQL: use pg_dump.
    Backup { file: PathBuf },
    /// The blank forms providers fill in.
    Forms {
        #[command(subcommand)]
        command: FormsCommand,
    },
    /// Report every configuration problem at once.
    CheckConfig,
    /// Try every configured connection (database, KIV, mail source, reply sink): one line each.
    Check,
    /// Read attachments for the daemon (started by it; the protocol is on stdin and stdout).
    #[command(hide = true)]
    Worker,
    /// Copy a SQLite store into an empty PostgreSQL database, in one transaction.
    MigrateStore {
        /// The SQLite store: sqlite:PATH.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: postgres://user@host/database.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum CasesCommand {
    /// List cases, newest first (the rejection queue: --decision rejected).
    List {
        #[arg(long, value_parser = ["queued", "rejected"])]
        decision: Option<String>,
        #[arg(long, value_parser = ["order", "deregistration", "unknown"])]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show one case: fields, reasons, warnings, the email's headers, the reply, the audit trail.
    Show {
        case: String,
        #[arg(long)]
        json: bool,
    },
    /// Emails not decided yet because KIV (LDAP) could not be reached; they are tried again.
    Waiting {
        #[arg(long)]
        json: bool,
    },
    /// Overturn a rejection: the case becomes queued and the sender gets a notice.
    Overturn {
        case: String,
        /// Why (required; kept in the audit trail).
        #[arg(long)]
        comment: String,
        /// Who acts (default: cli:$USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Confirm a rejection.
    Confirm {
        case: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Correct the fields of a case held for verification (SPEC §4.4) or of a rejected case,
    /// and (held only, --confirm) decide it and send its reply.
    Verify {
        case: String,
        /// A corrected value, `key=value` (an empty value removes it); may be repeated.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The reading (with the corrections) is right: decide the held case and reply.
        #[arg(long)]
        confirm: bool,
        #[arg(long)]
        by: Option<String>,
    },
    /// Send a case's held replies after all (past the rate limit; or, held in doubt, when
    /// the relay's log shows they never arrived).
    Release {
        case: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Send a case's failed replies again (after the cause is fixed: a wrong address, a relay
    /// that refused us). Each failed reply is sent once more; audited.
    Resend {
        case: String,
        /// Only this reply (e.g. TJID-2026-000123-1).
        reply: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// A case's replies held in doubt did arrive (the relay's log shows them): record them
    /// as sent; they are never sent again.
    Delivered {
        case: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Move a case on: ordered_at_telia, card_ready, handed_out (needs --card-number),
    /// deregistered; or correct_card (a handed-out card's number, with --card-number and
    /// --comment).
    Mark {
        case: String,
        #[arg(value_parser = ["ordered_at_telia", "card_ready", "handed_out", "deregistered", "correct_card"])]
        state: String,
        #[arg(long)]
        card_number: Option<String>,
        /// The card number fails its Luhn check digit, and it has been compared with the card.
        #[arg(long)]
        checksum_checked: bool,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        username: String,
        /// Name shown on the pages (default: the user name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Disable a user: they cannot log in and their sessions end.
    Disable {
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        username: String,
    },
    /// Set a new password (read from standard input); ends the user's sessions.
    Passwd {
        username: String,
    },
    List,
}

#[derive(Subcommand)]
enum FormsCommand {
    /// Write the blank fillable forms TJID-101 and TJID-102 as PDFs into DIR.
    Write { dir: PathBuf },
}

pub fn main() -> ExitCode {
    // Only ring is compiled in; installing it up front keeps every rustls user on it.
    crate::directory::ldap::install_crypto_provider();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Worker = &cli.command {
        return Ok(crate::pipeline::worker::serve());
    }
    if let Command::Forms {
        command: FormsCommand::Write { dir },
    } = &cli.command
    {
        return write_forms(dir);
    }
    if let Command::MigrateStore { from, to } = &cli.command {
        return migrate_store(from, to);
    }
    let settings = Settings::load(cli.config.as_deref())?;
    if let Command::CheckConfig = cli.command {
        println!("configuration OK");
        return Ok(ExitCode::SUCCESS);
    }
    crate::telemetry::init(&settings.log);
    crate::net::tls::install_default_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run => run(settings).await,
            Command::Process {
                dry_run,
                json,
                paths,
            } => process(settings, dry_run, json, &paths).await,
            Command::Cases { command } => cases(settings, command).await,
            Command::Users { command } => users(settings, command).await,
            Command::Providers { command } => {
                let store = open_store(&settings).await?;
                // The register changed here is the one the daemon reads: seeded first.
                crate::casework::register::seed(&store, &settings.providers.csv).await?;
                crate::app::providers_cli::run(&store, command, actor_or_cli).await
            }
            Command::Purge => purge(settings).await,
            Command::Backup { file } => backup(settings, &file).await,
            Command::Check => check(settings).await,
            Command::Forms { .. }
            | Command::CheckConfig
            | Command::MigrateStore { .. }
            | Command::Worker => {
                unreachable!("handled above")
            }
        }
    })
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.store)
        .await
        .with_context(|| match settings.store.kind {
            crate::config::StoreKind::Sqlite => format!(
                "cannot open the store (store.sqlite = {})",
                settings.store.sqlite.display()
            ),
            crate::config::StoreKind::Postgres => format!(
                "cannot open the store (store.url = {})",
                crate::store::postgres::redact_url(&settings.store.url)
            ),
        })
}

/// `run`'s store. PostgreSQL is tried, and tried again with back-off (1 s doubling to 30 s)
/// while it cannot be reached, with `/healthz` answering and `/readyz` saying why (503) from
/// the start, for at most `[store] startup_wait_secs` (0: as long as it takes; a limit is for
/// those who prefer a supervisor to restart it). `None`: stopped (SIGTERM) while waiting. A
/// SQLite file that cannot be opened is a configuration error and stops the daemon at once.
async fn open_store_waiting(settings: &Settings) -> anyhow::Result<Option<Store>> {
    use std::time::{Duration, Instant};
    if settings.store.kind != crate::config::StoreKind::Postgres {
        return open_store(settings).await.map(Some);
    }
    let limit = (settings.store.startup_wait_secs > 0)
        .then(|| Duration::from_secs(settings.store.startup_wait_secs));
    let started = Instant::now();
    let endpoint = match settings.http.listen.trim() {
        "" => None,
        listen => {
            Some(crate::app::ops::WaitingEndpoint::start(listen, "not connected yet".into()).await?)
        }
    };
    let stop = crate::app::daemon::shutdown_signal();
    tokio::pin!(stop);
    let mut attempt = 0u32;
    let outcome = loop {
        // One attempt (sqlx keeps connecting for up to 30 s), cut short by the limit.
        let try_for = limit.map_or(Duration::from_secs(3600), |l| {
            l.saturating_sub(started.elapsed())
        });
        let result = tokio::select! {
            r = tokio::time::timeout(try_for, open_store(settings)) => r,
            _ = &mut stop => break Ok(None),
        };
        let error = match result {
            Ok(Ok(store)) => {
                if attempt > 0 {
                    tracing::warn!(
                        waited_secs = started.elapsed().as_secs(),
                        "the store is reachable; starting"
                    );
                }
                break Ok(Some(store));
            }
            Ok(Err(e)) => e,
            Err(_) => anyhow::anyhow!("no connection to the store within {} s", try_for.as_secs()),
        };
        if let Some(endpoint) = &endpoint {
            endpoint.set_why(format!("{error:#}"));
        }
        let waited = started.elapsed();
        if limit.is_some_and(|l| waited >= l) {
            break Err(error.context(format!(
                "gave up waiting for the store after {} s (store.startup_wait_secs)",
                waited.as_secs()
            )));
        }
        let delay = Duration::from_millis(crate::clock::backoff_ms(1_000, 30_000, attempt.into()));
        let delay = limit.map_or(delay, |l| delay.min(l.saturating_sub(waited)));
        tracing::warn!(error = %format!("{error:#}"), retry_in_ms = delay.as_millis() as u64,
            "the store is not reachable at start-up; /healthz answers, /readyz says 503 until it is");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut stop => break Ok(None),
        }
        attempt = attempt.saturating_add(1);
    };
    if let Some(endpoint) = endpoint {
        endpoint.stop().await;
    }
    if let Ok(None) = outcome {
        tracing::info!("stopped while waiting for the store");
    }
    outcome
}

/// `migrate-store --from sqlite:PATH --to postgres://…`.
fn migrate_store(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(crate::store::migrate::sqlite_to_postgres(from, to))
        .context("cannot copy the store")?;
    for (table, rows) in &report {
        println!("{table}: {rows} rows");
    }
    println!("copied into {}", crate::store::postgres::redact_url(to));
    Ok(ExitCode::SUCCESS)
}

fn open_sink(settings: &Settings) -> anyhow::Result<ReplySink> {
    ReplySink::open(&settings.sink, &settings.smtp, &settings.intake.own_address)
}

/// Untrusted attachments are read in worker processes of this binary (`run` and `process`).
fn enable_workers(settings: &Settings) -> anyhow::Result<()> {
    let program = std::env::current_exe().context("cannot find this program to start workers")?;
    let workers = match settings.ocr.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    crate::pipeline::worker::enable(crate::pipeline::worker::WorkerSettings {
        program,
        workers,
        memory_mb: settings.limits.worker_memory_mb,
        cpu_per_attachment: std::time::Duration::from_secs(settings.limits.worker_cpu_secs),
        recycle_after: settings.limits.worker_recycle_after,
        log: settings.log.clone(),
    });
    Ok(())
}

async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    enable_workers(&settings)?;
    let Some(store) = open_store_waiting(&settings).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let sink = open_sink(&settings)?;
    let intake = Arc::new(Intake::load(settings.intake_parts())?);
    if let crate::directory::Directory::Ldap(ldap) = intake.directory() {
        ldap.check_at_start_up().await?;
    }
    crate::app::daemon::run(settings, intake, store, sink).await?;
    Ok(ExitCode::SUCCESS)
}

async fn process(
    settings: Settings,
    dry_run: bool,
    json: bool,
    paths: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    enable_workers(&settings)?;
    let inputs = crate::source::read_files(paths)?;
    let (recorder, sink) = if dry_run {
        (Recorder::DryRun(Mutex::new(DryRun::default())), None)
    } else {
        (
            Recorder::Store(open_store(&settings).await?),
            Some(open_sink(&settings)?),
        )
    };
    let outbox = settings.outbox.clone();
    let rate = settings.rate_limit.clone();
    let intake = Arc::new(Intake::load(settings.intake_parts())?);
    // A dry run reads the CSV register (SPEC §3.2); a recording run the store's.
    if let Recorder::Store(store) = &recorder {
        crate::casework::register::seed_and_load(store, &intake, &settings.providers.csv).await?;
    }
    let stdout = std::io::stdout();
    let mut quarantined = 0usize;
    let waiting = intake
        // Lines in the order of the arguments.
        .process_batch(inputs, Order::AsGiven, &recorder, |_, outcome| {
            quarantined += usize::from(outcome.decision == EmailOutcome::Quarantined);
            let mut out = stdout.lock();
            if json {
                serde_json::to_writer(&mut out, outcome)?;
                writeln!(out)?;
            } else {
                let what = match (outcome.decision, outcome.ignored_reason) {
                    (EmailOutcome::Ignored, Some(r)) => format!("ignored ({r})"),
                    (EmailOutcome::Quarantined, _) => {
                        format!("quarantined: {}", outcome.error.as_deref().unwrap_or(""))
                    }
                    _ => outcome
                        .cases
                        .iter()
                        .map(|c| {
                            let reasons: Vec<&str> =
                                c.reasons.iter().map(|r| r.code.as_str()).collect();
                            format!(
                                "{} {} {} {}",
                                c.case_id,
                                c.kind,
                                c.decision,
                                reasons.join(",")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                writeln!(out, "{}: {}", outcome.source, what.trim_end())?;
            }
            Ok(())
        })
        .await?
        .waiting;
    if quarantined > 0 {
        eprintln!("warning: {quarantined} email(s) quarantined (see \"error\" in their output)");
    }
    if !waiting.is_empty() {
        // A one-shot run does not wait: the emails were not decided, nothing of them was
        // stored, and running the command again later processes them.
        if let Recorder::Store(store) = &recorder {
            for w in &waiting {
                store.clear_waiting(&w.source_ref).await?;
            }
        }
        eprintln!(
            "error: {} email(s) not processed: KIV cannot be reached",
            waiting.len()
        );
        for w in &waiting {
            eprintln!("  {}: {}", w.display, w.error);
        }
    }
    if let (Recorder::Store(store), Some(sink)) = (&recorder, sink) {
        let report = crate::outbox::deliver_once(store, &sink, &outbox, &rate).await?;
        if report.retried + report.failed + report.held > 0 {
            eprintln!(
                "replies: {} sent, {} to retry, {} failed, {} held by the rate limit",
                report.sent, report.retried, report.failed, report.held
            );
        }
    }
    Ok(if waiting.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn check(settings: Settings) -> anyhow::Result<ExitCode> {
    let lines = crate::app::self_check::run_checks(&settings).await;
    let failed = lines.iter().filter(|l| l.result.is_err()).count();
    for line in &lines {
        println!("{}", line.render());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn cases(settings: Settings, command: CasesCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    match command {
        CasesCommand::List {
            decision,
            kind,
            limit,
            json,
        } => {
            let rows = store
                .list_cases(&CaseFilter {
                    decision,
                    kind,
                    limit,
                    ..CaseFilter::default()
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<18} {:<15} {:<9} {:<16} {:<40} SUBJECT",
                "CASE", "KIND", "DECISION", "RECEIVED", "REASONS"
            );
            for r in &rows {
                let reasons: Vec<serde_json::Value> =
                    serde_json::from_str(&r.reasons).unwrap_or_default();
                let codes: Vec<&str> = reasons.iter().filter_map(|v| v["code"].as_str()).collect();
                println!(
                    "{:<18} {:<15} {:<9} {:<16} {:<40} {}",
                    r.id,
                    r.kind,
                    r.decision,
                    format_ms(r.created_at),
                    codes.join(","),
                    r.subject
                );
            }
            println!("{} case(s)", rows.len());
            let waiting = store.counts().await?.kiv_waiting;
            if waiting > 0 {
                println!(
                    "{waiting} email(s) wait for KIV and are not decided yet: see `cases waiting`"
                );
            }
        }
        CasesCommand::Waiting { json } => {
            let rows = store.list_waiting().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<16} {:<6} {:<16} {:<30} SUBJECT",
                "SINCE", "TRIES", "NEXT TRY", "FROM"
            );
            for r in &rows {
                println!(
                    "{:<16} {:<6} {:<16} {:<30} {}",
                    format_ms(r.first_seen_at),
                    r.attempts,
                    format_ms(r.next_attempt_at),
                    r.sender.as_deref().unwrap_or("-"),
                    r.subject
                );
                println!("    {}", r.last_error);
            }
            println!("{} email(s) waiting for KIV", rows.len());
        }
        CasesCommand::Show { case, json } => {
            let Some(detail) = store.case_detail(&case).await? else {
                eprintln!("error: no case {case}");
                return Ok(ExitCode::from(1));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", render_case_text(&detail));
        }
        CasesCommand::Overturn { case, comment, by } => {
            return transition(
                &settings,
                &store,
                case,
                Action::Overturn,
                Some(comment),
                None,
                by,
            )
            .await;
        }
        CasesCommand::Confirm { case, comment, by } => {
            return transition(&settings, &store, case, Action::Confirm, comment, None, by).await;
        }
        CasesCommand::Verify {
            case,
            set,
            confirm,
            by,
        } => return verify(settings, &store, case, set, confirm, by).await,
        CasesCommand::Release { case, by } => {
            if !settle_held(&store, &case, by, SettleHeld::Send).await? {
                return Ok(ExitCode::from(1));
            }
            let sink = open_sink(&settings)?;
            crate::outbox::deliver_once(&store, &sink, &settings.outbox, &settings.rate_limit)
                .await?;
        }
        CasesCommand::Resend { case, reply, by } => {
            let now = chrono::Utc::now().timestamp_millis();
            let ids = store
                .resend_failed(&case, reply.as_deref(), &actor_or_cli(by), now)
                .await?;
            if ids.is_empty() {
                eprintln!(
                    "error: {case} has no failed reply{}",
                    reply.map(|r| format!(" {r}")).unwrap_or_default()
                );
                return Ok(ExitCode::from(1));
            }
            println!("{case}: sending again: {}", ids.join(", "));
            let sink = open_sink(&settings)?;
            let report =
                crate::outbox::deliver_once(&store, &sink, &settings.outbox, &settings.rate_limit)
                    .await?;
            if report.retried + report.failed + report.held > 0 {
                eprintln!(
                    "replies: {} sent, {} to retry, {} failed, {} held",
                    report.sent, report.retried, report.failed, report.held
                );
            }
        }
        CasesCommand::Delivered { case, by } => {
            if !settle_held(&store, &case, by, SettleHeld::Delivered).await? {
                return Ok(ExitCode::from(1));
            }
        }
        CasesCommand::Mark {
            case,
            state,
            card_number,
            checksum_checked,
            comment,
            by,
        } => {
            let action = Action::parse(&state).context("unknown state")?;
            let card = card_number.map(|number| (number, checksum_checked));
            return transition(&settings, &store, case, action, comment, card, by).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who acts: `--by`, or `cli:$USER`.
fn actor_or_cli(by: Option<String>) -> String {
    by.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

/// `cases release` and `cases delivered`: settles a case's held replies and says how many;
/// false (after an error line) when the case had none to settle.
async fn settle_held(
    store: &Store,
    case: &str,
    by: Option<String>,
    how: SettleHeld,
) -> anyhow::Result<bool> {
    let now = chrono::Utc::now().timestamp_millis();
    let n = store
        .settle_held(case, None, &actor_or_cli(by), now, how)
        .await?;
    let replies = if n == 1 { "reply" } else { "replies" };
    let (none, done) = match how {
        SettleHeld::Send => ("no held reply", format!("held {replies} released")),
        SettleHeld::Delivered => (
            "no reply held in doubt",
            format!("{replies} held in doubt recorded as delivered"),
        ),
    };
    if n == 0 {
        eprintln!("error: {case} has {none}");
        return Ok(false);
    }
    println!("{case}: {n} {done}");
    Ok(true)
}

async fn verify(
    settings: Settings,
    store: &Store,
    case: String,
    set: Vec<String>,
    confirm: bool,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut corrections = Vec::new();
    for item in &set {
        let Some((key, value)) = item.split_once('=') else {
            eprintln!("error: --set takes key=value, not {item:?}");
            return Ok(ExitCode::from(1));
        };
        corrections.push((key.trim().to_string(), value.to_string()));
    }
    let outbox = settings.outbox.clone();
    let rate = settings.rate_limit.clone();
    let sink = open_sink(&settings)?;
    let intake = Intake::load(settings.intake_parts())?;
    let request = crate::casework::verification::VerifyRequest {
        case_id: case.clone(),
        actor: actor_or_cli(by),
        corrections,
        confirm,
    };
    let now = chrono::Utc::now().timestamp_millis();
    match crate::casework::verification::verify(store, &intake, now, request).await {
        Ok(done) => {
            let reasons: Vec<String> = done
                .reasons
                .iter()
                .map(|r| match r.field {
                    Some(f) => format!("{} {f}", r.code),
                    None => r.code.to_string(),
                })
                .collect();
            println!(
                "{case}: {} -> {}  decision {}  corrected [{}]{}",
                done.from,
                done.state,
                done.decision,
                done.corrected.join(", "),
                match &done.reply {
                    Some(id) => format!("  reply queued: {id}"),
                    None => String::new(),
                }
            );
            for r in &reasons {
                println!("  - {r}");
            }
            if done.reply.is_some() {
                crate::outbox::deliver_once(store, &sink, &outbox, &rate).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(crate::casework::verification::VerifyError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn transition(
    settings: &Settings,
    store: &Store,
    case: String,
    action: Action,
    comment: Option<String>,
    card: Option<(String, bool)>,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let actor = actor_or_cli(by);
    let reply = ReplySettings {
        own_address: &settings.intake.own_address,
        display_name: &settings.intake.display_name,
        office_address: &settings.intake.office_address,
    };
    let request = Request {
        case_id: case.clone(),
        action,
        actor,
        comment,
        checksum_confirmed: card.as_ref().is_some_and(|c| c.1),
        card_number: card.map(|c| c.0),
    };
    let now = chrono::Utc::now().timestamp_millis();
    match crate::casework::lifecycle::apply(store, &reply, now, request).await {
        Ok(applied) => {
            println!(
                "{case}: {} -> {}{}",
                applied.from,
                applied.to,
                if applied.notices.is_empty() {
                    String::new()
                } else {
                    format!(" (notices queued: {})", applied.notices.join(", "))
                }
            );
            // Notices leave now when the reply folder is at hand; else the daemon sends them.
            if !applied.notices.is_empty() {
                let sink = open_sink(settings)?;
                crate::outbox::deliver_once(store, &sink, &settings.outbox, &settings.rate_limit)
                    .await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LifecycleError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn users(settings: Settings, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let read_password = || -> anyhow::Result<String> {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        crate::web::auth::check_password_strength(&password)?;
        Ok(password)
    };
    let hash = |password: String| -> anyhow::Result<String> {
        crate::web::auth::hash_password(&password)
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    };
    match command {
        UsersCommand::Add { username, name } => {
            crate::web::auth::check_username(&username)?;
            let password = hash(read_password()?)?;
            let display = name.unwrap_or_else(|| username.clone());
            if !store.add_user(&username, &display, &password, now).await? {
                eprintln!("error: the user {username} already exists");
                return Ok(ExitCode::from(1));
            }
            println!("user {username} added");
        }
        UsersCommand::Disable { ref username } | UsersCommand::Enable { ref username } => {
            let disable = matches!(command, UsersCommand::Disable { .. });
            if !store.set_user_disabled(username, disable, now).await? {
                eprintln!("error: no user {username}");
                return Ok(ExitCode::from(1));
            }
            println!(
                "user {username} {}",
                if disable { "disabled" } else { "enabled" }
            );
        }
        UsersCommand::Passwd { username } => {
            let password = hash(read_password()?)?;
            if !store.set_password(&username, &password, now).await? {
                eprintln!("error: no user {username}");
                return Ok(ExitCode::from(1));
            }
            println!("password of {username} changed");
        }
        UsersCommand::List => {
            for u in store.users().await? {
                println!(
                    "{:<20} {:<30} {}",
                    u.username,
                    u.display_name,
                    if u.disabled != 0 {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn backup(settings: Settings, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    if file.exists() {
        anyhow::bail!(
            "{} exists already: a backup never overwrites",
            file.display()
        );
    }
    let store = open_store(&settings).await?;
    store
        .backup_to(file)
        .await
        .with_context(|| format!("cannot write the backup {}", file.display()))?;
    println!("backup written to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

async fn purge(settings: Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let report = crate::casework::retention::purge(
        &store,
        &settings.retention,
        Some(&settings.originals()),
        now,
    )
    .await?;
    println!(
        "purged: {} email(s), {} rejected case(s), {} completed case(s)",
        report.messages, report.rejected_cases, report.completed_cases
    );
    let removed =
        crate::casework::retention::erase_on_server(&store, settings.imap_source(), now).await?;
    if removed > 0 {
        println!("removed from the IMAP server: {removed} email(s)");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_forms(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::forms::spec::FormKind;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for kind in FormKind::ALL {
        let path = dir.join(format!("{}.pdf", kind.form_id()));
        std::fs::write(&path, crate::forms::pdf_writer::blank_form(kind))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The plain-text view of one case for `cases show`.
fn render_case_text(d: &crate::store::CaseDetail) -> String {
    use std::fmt::Write as _;
    let c = &d.case;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Case {}  kind {}  decision {}  state {}",
        c.id, c.kind, c.decision, c.state
    );
    let _ = writeln!(
        out,
        "Received {}  from {}  source {}",
        format_ms(c.created_at),
        c.sender.as_deref().unwrap_or("-"),
        c.source_ref
    );
    let _ = writeln!(out, "Subject: {}", c.subject);
    if c.state == crate::casework::verification::HELD {
        let fields: Vec<Option<String>> = serde_json::from_str(&c.verify).unwrap_or_default();
        let fields: Vec<&str> = fields
            .iter()
            .map(|f| f.as_deref().unwrap_or("(no field)"))
            .collect();
        let _ = writeln!(
            out,
            "Held for verification: {}  (no reply yet; see `cases verify`)",
            fields.join(", ")
        );
    }
    if let Some(a) = &c.attachment {
        let _ = writeln!(out, "Attachment: {a}  pages {}", c.pages);
    }
    let _ = writeln!(out, "\nFields:");
    if let Ok(serde_json::Value::Object(fields)) =
        serde_json::from_str::<serde_json::Value>(&c.fields)
    {
        for (k, v) in fields {
            let _ = writeln!(out, "  {k:<18} {}", v.as_str().unwrap_or("-"));
        }
    }
    for (title, json) in [("Reasons", &c.reasons), ("Warnings", &c.warnings)] {
        let items: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{title}:{}",
            if items.is_empty() { " none" } else { "" }
        );
        for i in items {
            let _ = writeln!(
                out,
                "  - {} {}",
                i["code"].as_str().unwrap_or("?"),
                i["field"].as_str().unwrap_or("")
            );
        }
    }
    let _ = writeln!(out, "\nEmail headers:");
    for line in c.headers.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "\nReplies:");
    for r in &d.replies {
        let sent = r.sent_at.map(format_ms).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  {} to {}  status {}  attempts {}  sent {}",
            r.id, r.recipient, r.status, r.attempts, sent
        );
        if let Some(e) = &r.last_error {
            let _ = writeln!(out, "    last error: {e}");
        }
        let text = mail_parser::MessageParser::default()
            .parse(r.raw.as_bytes())
            .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
            .unwrap_or_default();
        for line in text.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
    if !d.bounces.is_empty() {
        let _ = writeln!(out, "\nDelivery reports (bounces):");
        for b in &d.bounces {
            let _ = writeln!(
                out,
                "  {}  reply {}  action {}  status {}  from {}",
                format_ms(b.at),
                b.outbox_id.as_deref().unwrap_or("-"),
                b.action.as_deref().unwrap_or("-"),
                b.status.as_deref().unwrap_or("-"),
                b.sender.as_deref().unwrap_or("-")
            );
        }
    }
    let _ = writeln!(out, "\nAudit trail:");
    for a in &d.audit {
        let change = match (&a.before, &a.after) {
            (Some(b), Some(x)) => format!("{b} -> {x}"),
            (None, Some(x)) => format!("-> {x}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}  {:<8} {:<10} {} {}",
            format_ms(a.at),
            a.actor,
            a.action,
            change,
            a.comment.as_deref().unwrap_or("")
        );
    }
    out
}
