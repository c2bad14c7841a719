//! `tjid-intake providers …`: the register of connected providers from the command line
//! (issue 22), the same changes as the staff page "Anslutna vårdgivare", each with a required
//! comment and an event in the register's history.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Subcommand;

use crate::domain::ProviderId;
use crate::store::providers::{ProviderDetails, RegisterActor, RegisterChange};
use crate::store::Store;

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// The register: number, name, connected from (and until), kansli.
    List {
        /// Only providers whose name or number holds this (case and diacritics folded).
        #[arg(long)]
        search: Option<String>,
    },
    /// Connect a provider from a date.
    Add {
        /// Organisation number (or a sole trader's personnummer).
        number: String,
        #[arg(long)]
        name: String,
        /// The date it is connected from, YYYY-MM-DD.
        #[arg(long)]
        connected: String,
        /// The hälso- och sjukvårdskansli the application came through.
        #[arg(long, default_value = "")]
        kansli: String,
        #[arg(long, default_value = "")]
        note: String,
        /// Why (required; kept in the register's history).
        #[arg(long)]
        comment: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Disconnect a provider from a date (an ended agreement); kept as history.
    Disconnect {
        number: String,
        /// The first date it is no longer connected, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        #[arg(long)]
        comment: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Connect again, from a date, a provider that was disconnected (a new period).
    Reconnect {
        number: String,
        /// The date it is connected from again, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        #[arg(long)]
        comment: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Import a register file (SPEC §3.2 CSV): adds what is missing, renames what differs,
    /// never deletes; importing the same file again changes nothing.
    Import {
        file: PathBuf,
        /// Show what would be added or changed; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = "Import av registerfil")]
        comment: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// The providers connected today or later as a register file (SPEC §3.2 CSV) on stdout.
    Export,
}

fn number(raw: &str) -> anyhow::Result<String> {
    let today = chrono::Local::now().date_naive();
    ProviderId::parse(raw, today)
        .map(|id| id.register_key())
        .map_err(|e| anyhow::anyhow!("the number is not valid: {e} (SPEC §2.4)"))
}

fn day(raw: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("the date must be YYYY-MM-DD"))
}

fn required(comment: &str) -> anyhow::Result<&str> {
    match comment.trim() {
        "" => anyhow::bail!("--comment is required: say why"),
        c => Ok(c),
    }
}

fn outcome(change: RegisterChange) -> anyhow::Result<ExitCode> {
    let why = match change {
        RegisterChange::Done => {
            println!("done");
            return Ok(ExitCode::SUCCESS);
        }
        RegisterChange::Unknown => "no provider with that number is in the register",
        RegisterChange::Exists => "the provider is in the register already",
        RegisterChange::NotConnected => "the provider is not connected",
        RegisterChange::AlreadyConnected => "the provider is connected already",
        RegisterChange::DateOutOfOrder => {
            "the date is before the start of its connection (or before its last end)"
        }
    };
    anyhow::bail!("{why}; nothing changed")
}

pub async fn run(
    store: &Store,
    command: ProvidersCommand,
    by: impl Fn(Option<String>) -> String,
) -> anyhow::Result<ExitCode> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let connect = matches!(command, ProvidersCommand::Reconnect { .. });
    match command {
        ProvidersCommand::List { search } => {
            let today = chrono::Local::now().date_naive();
            let needle = search.as_deref().map(crate::forms::labels::fold);
            for e in store.provider_entries().await? {
                let hay =
                    crate::forms::labels::fold(&format!("{} {} {}", e.name, e.key, e.number()));
                if needle.as_deref().is_some_and(|n| !hay.contains(n)) {
                    continue;
                }
                let periods: Vec<String> = e
                    .periods
                    .iter()
                    .map(|p| match p.until {
                        Some(until) => format!("{}–{until}", p.from),
                        None => format!("{}–", p.from),
                    })
                    .collect();
                let state = if e.connected_on(today) {
                    "ansluten"
                } else {
                    "ej ansluten"
                };
                println!(
                    "{}\t{}\t{state}\t{}\t{}",
                    e.number(),
                    e.name,
                    periods.join(", "),
                    e.kansli
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ProvidersCommand::Add {
            number: raw,
            name,
            connected,
            kansli,
            note,
            comment,
            by: who,
        } => {
            let key = number(&raw)?;
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if name.is_empty() {
                anyhow::bail!("--name is required");
            }
            let actor = by(who);
            let details = ProviderDetails {
                name: &name,
                kansli: kansli.trim(),
                note: note.trim(),
            };
            let who = RegisterActor {
                actor: &actor,
                comment: required(&comment)?,
                now_ms,
            };
            outcome(
                store
                    .provider_add(&key, details, day(&connected)?, who)
                    .await?,
            )
        }
        ProvidersCommand::Disconnect {
            number: raw,
            from,
            comment,
            by: who,
        }
        | ProvidersCommand::Reconnect {
            number: raw,
            from,
            comment,
            by: who,
        } => {
            let key = number(&raw)?;
            let actor = by(who);
            let who = RegisterActor {
                actor: &actor,
                comment: required(&comment)?,
                now_ms,
            };
            let on = day(&from)?;
            outcome(match connect {
                true => store.provider_reconnect(&key, on, who).await?,
                false => store.provider_disconnect(&key, on, who).await?,
            })
        }
        ProvidersCommand::Import {
            file,
            dry_run,
            comment,
            by: who,
        } => import(store, &file, dry_run, required(&comment)?, &by(who), now_ms).await,
        ProvidersCommand::Export => {
            let today = chrono::Local::now().date_naive();
            let mut out = csv::Writer::from_writer(std::io::stdout().lock());
            out.write_record(["organisationsnummer", "vardgivare", "ansluten"])?;
            for e in store.provider_entries().await? {
                // Connected now or from a later date: the open period's start.
                if let Some(open) = e
                    .open_period()
                    .filter(|p| p.covers(today) || p.from > today)
                {
                    out.write_record([e.number(), e.name.clone(), open.from.to_string()])?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn import(
    store: &Store,
    file: &Path,
    dry_run: bool,
    comment: &str,
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<ExitCode> {
    let rows = crate::casework::register::read_csv(file, true)?;
    let who = RegisterActor {
        actor,
        comment,
        now_ms,
    };
    let report = store.provider_import(&rows, who, dry_run).await?;
    let verb = if dry_run { "would add" } else { "added" };
    for (key, name, since) in &report.added {
        println!("{verb}: {key} {name} (ansluten från {since})");
    }
    let verb = if dry_run { "would rename" } else { "renamed" };
    for (key, old, new) in &report.renamed {
        println!("{verb}: {key} {old} → {new}");
    }
    println!(
        "{} added, {} renamed, {} unchanged{}",
        report.added.len(),
        report.renamed.len(),
        report.unchanged,
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
