//! The register of connected providers as the intake reads it (issue 22): kept in the store
//! by staff; a copy of `[providers] csv` until a member of staff first changes it (`seed`);
//! read again by a running daemon so that a change made on the staff pages (or by
//! `tjid-intake providers`, or by another instance) decides the next email.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::pipeline::Intake;
use crate::store::providers::{ImportReport, RegisterActor};
use crate::store::Store;

/// How often a running daemon reads the register again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Who writes the register's copy of the CSV.
pub const SYSTEM: &str = "system";

/// Reads a register file (SPEC §3.2); the first bad row is named by its line. `strict` (an
/// import by staff): every number must also be a valid organisation number or personnummer
/// (SPEC §2.4). The seed reads the file as the CSV register always did.
pub fn read_csv(path: &Path, strict: bool) -> anyhow::Result<Vec<crate::providers::CsvRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    csv_rows(&text, path, strict)
}

/// `read_csv` of a file already read (`path` names it in errors).
fn csv_rows(
    text: &str,
    path: &Path,
    strict: bool,
) -> anyhow::Result<Vec<crate::providers::CsvRow>> {
    let rows = crate::providers::parse_csv(text)
        .with_context(|| format!("provider register {}", path.display()))?;
    for row in rows.iter().filter(|_| strict) {
        if crate::domain::ProviderId::parse(&row.key, row.since).is_err() {
            anyhow::bail!(
                "provider register {}: line {}: organisationsnummer is not a valid organisation number or personnummer (check digit, SPEC §2.4); nothing was imported",
                path.display(),
                row.line
            );
        }
    }
    Ok(rows)
}

/// Seeds the store's register from the CSV: an empty one, and one that only this seeding
/// has written (no person has changed it yet), which follows the CSV at every start so that a
/// configuration of SPEC §6's keys alone behaves as before. Once a member of staff has changed
/// the register (page or `providers` command), the store's register is the register and the
/// CSV is not read again. Returns what was seeded, if anything.
pub async fn seed(store: &Store, csv: &Path) -> anyhow::Result<Option<ImportReport>> {
    if store.providers_kept_by_staff(SYSTEM).await? {
        return Ok(None);
    }
    seed_rows(store, &read_csv(csv, false)?).await
}

/// `seed` with the CSV's rows read.
async fn seed_rows(
    store: &Store,
    rows: &[crate::providers::CsvRow],
) -> anyhow::Result<Option<ImportReport>> {
    let who = RegisterActor {
        actor: SYSTEM,
        comment: "Registret lästes in från providers.csv (ingen handläggare har ändrat det ännu)",
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    if store.providers_count().await? == 0 {
        let report = store.provider_import(rows, who, false).await?;
        tracing::info!(
            providers = report.added.len(),
            "the store's provider register was empty: seeded from providers.csv"
        );
        return Ok(Some(report));
    }
    // Unchanged by staff: a copy of the CSV, replaced when the CSV differs.
    let now = store.provider_register().await?;
    let wanted = crate::providers::ProviderRegister::from_csv_rows(rows);
    if now.same_as(&wanted) {
        return Ok(None);
    }
    if store.provider_mirror(rows, who).await? {
        tracing::info!(
            "the provider register follows providers.csv (no member of staff has changed it)"
        );
    }
    Ok(None)
}

/// `seed`, then the intake reads the store's register.
pub async fn seed_and_load(store: &Store, intake: &Intake, csv: &Path) -> anyhow::Result<()> {
    seed(store, csv).await?;
    let register = store.provider_register().await?;
    tracing::info!(
        providers = register.len(),
        "register of connected providers read from the store"
    );
    intake.set_providers(register);
    Ok(())
}

/// Reads the store's register into the intake every `REFRESH_EVERY`. While no member of
/// staff has changed the register it follows the CSV: `csv` (made before the start-up `seed`
/// read the file) notices a settled change, and the file is read then, once; one that does not
/// end with a line break may be half-written and waits for its next change. A failed read
/// keeps the register the intake has; a CSV that cannot be read is logged once until it
/// changes.
pub fn start_refresh(
    intake: &Arc<Intake>,
    store: &Store,
    csv: crate::file_watch::FileWatch,
) -> tokio::task::JoinHandle<()> {
    let intake = Arc::clone(intake);
    let store = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH_EVERY).await;
            if csv.settled_change()
                && !matches!(store.providers_kept_by_staff(SYSTEM).await, Ok(true))
            {
                let path = csv.path();
                let reread =
                    match tokio::fs::read_to_string(path).await {
                        // Perhaps half-written: its next change is read.
                        Ok(text) if !text.ends_with('\n') => Ok(None),
                        Ok(text) => match csv_rows(&text, path, false) {
                            Ok(rows) => seed_rows(&store, &rows).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(anyhow::Error::new(e)
                            .context(format!("cannot read {}", path.display()))),
                    };
                if let Err(e) = reread {
                    tracing::error!(error = %format!("{e:#}"), "providers.csv could not be read again; the register stays as it was");
                }
            }
            if let Ok(register) = store.provider_register().await {
                intake.set_providers(register);
            }
        }
    })
}

/// How far back a newly connected provider's rejected orders are offered for a new check.
pub const RECHECK_DAYS: i64 = 30;

/// The provider's orders rejected `provider_not_connected` in the last `RECHECK_DAYS` days
/// that are still rejected (not yet confirmed or overturned).
pub async fn rejected_not_connected(
    store: &Store,
    key: &str,
    now_ms: i64,
) -> Result<Vec<crate::store::CaseSummary>, crate::store::StoreError> {
    let cases = store
        .list_cases(&crate::store::CaseFilter {
            state: Some("rejected".into()),
            reason: Some(
                crate::case::ReasonCode::ProviderNotConnected
                    .as_str()
                    .into(),
            ),
            changed_from: Some(now_ms - RECHECK_DAYS * 86_400_000),
            ..crate::store::CaseFilter::default()
        })
        .await?;
    Ok(cases
        .into_iter()
        .filter(|c| provider_key_of(&c.fields).as_deref() == Some(key))
        .collect())
}

/// The register key of a case's `vardgivare_orgnr` (stored normalised).
fn provider_key_of(fields: &str) -> Option<String> {
    let fields: serde_json::Value = serde_json::from_str(fields).ok()?;
    let raw = fields.get("vardgivare_orgnr")?.as_str()?;
    crate::providers::normalize_key(raw)
}

/// What a new check of a provider's rejected orders did.
#[derive(Debug, Default)]
pub struct Rechecked {
    /// Overturned: now queued, the sender notified.
    pub overturned: Vec<String>,
    /// Still rejected for other reasons (case, those reasons' codes).
    pub other_reasons: Vec<(String, Vec<String>)>,
    /// The provider was not connected on the email's date either.
    pub not_connected_then: Vec<String>,
}

/// Checks the provider's orders rejected `provider_not_connected` (`rejected_not_connected`)
/// again with the register as it stands: an order whose email is dated in a connected period
/// and that had no other reason is overturned as staff overturn a case (audited, the sender
/// gets the overturn notice); the others are left as they are and named. Nothing is checked
/// again unless a member of staff asks (this is their action).
pub async fn recheck_not_connected(
    store: &Store,
    register: &crate::providers::ProviderRegister,
    reply: &crate::pipeline::reply::ReplySettings<'_>,
    key: &str,
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<Rechecked> {
    use crate::casework::lifecycle::{apply, Action, Request};
    let mut done = Rechecked::default();
    for summary in rejected_not_connected(store, key, now_ms).await? {
        let Some(detail) = store.case_detail(&summary.id).await? else {
            continue;
        };
        let (_, email_date) = super::verification::email_of(&detail.case);
        if !register.is_connected(key, email_date) {
            done.not_connected_then.push(summary.id);
            continue;
        }
        let others: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&summary.reasons)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r["code"].as_str())
            .filter(|c| *c != crate::case::ReasonCode::ProviderNotConnected.as_str())
            .map(str::to_string)
            .collect();
        if !others.is_empty() {
            done.other_reasons.push((summary.id, others));
            continue;
        }
        let request = Request {
            case_id: summary.id.clone(),
            action: Action::Overturn,
            actor: actor.to_string(),
            comment: Some(format!(
                "Kontrollerat igen: vårdgivaren är ansluten i registret för e-postens datum {email_date}."
            )),
            card_number: None,
            checksum_confirmed: false,
        };
        match apply(store, reply, now_ms, request).await {
            Ok(_) => done.overturned.push(summary.id),
            // Changed meanwhile (confirmed, overturned by someone else): left as it is.
            Err(e) => {
                tracing::warn!(case = %summary.id, error = %e, "a rejected order could not be overturned after its provider was connected")
            }
        }
    }
    tracing::info!(
        overturned = done.overturned.len(),
        other_reasons = done.other_reasons.len(),
        not_connected_then = done.not_connected_then.len(),
        user = %actor,
        "a provider's rejected orders were checked again"
    );
    Ok(done)
}
