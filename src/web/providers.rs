//! Anslutna vårdgivare (issue 22): the register of connected providers kept by staff. A list
//! with search and paging and a form to add one; each provider's page with its periods, its
//! history, changing its details, disconnecting it from a date (or connecting it again) and,
//! while it is connected, its orders rejected `provider_not_connected` in the last 30 days
//! with one button to have them checked again. Every change needs a comment and is written
//! to the register's history; a refused value changes nothing and says why in Swedish.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::render::{base, csrf_refused, internal, not_found, render};
use super::session::{csrf_ok, Staff};
use super::WebState;
use crate::casework::register;
use crate::domain::ProviderId;
use crate::store::providers::{
    ProviderDetails, ProviderEntry, ProviderEvent, RegisterActor, RegisterChange,
};

/// Every form of these pages: what is not on a form stays empty.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct ProviderForm {
    #[serde(skip_serializing)]
    csrf: String,
    nummer: String,
    namn: String,
    ansluten: String,
    kansli: String,
    anteckning: String,
    datum: String,
    kommentar: String,
}

impl ProviderForm {
    /// The name (collapsed by the caller), kansli and note as the register takes them.
    fn details<'a>(&'a self, name: &'a str) -> ProviderDetails<'a> {
        ProviderDetails {
            name,
            kansli: self.kansli.trim(),
            note: self.anteckning.trim(),
        }
    }
}

/// This member of staff changing the register now, for `comment`.
fn actor<'a>(state: &WebState, staff: &'a Staff, comment: &'a str) -> RegisterActor<'a> {
    RegisterActor {
        actor: &staff.username,
        comment,
        now_ms: state.now(),
    }
}

const BAD_NUMBER: &str = "Organisationsnumret är inte giltigt: skriv tio siffror (NNNNNN-NNNN) med rätt kontrollsiffra, eller en enskild firmas personnummer (ÅÅÅÅMMDD-NNNN). Ingenting sparades.";
const BAD_DATE: &str =
    "Datumet ska skrivas ÅÅÅÅ-MM-DD, till exempel 2026-12-01. Ingenting sparades.";
const NO_NAME: &str = "Skriv vårdgivarens namn. Ingenting sparades.";
const NO_COMMENT: &str = "Skriv en kommentar om varför ändringen görs. Ingenting sparades.";

fn today(state: &WebState) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(state.now())
        .map(|t| t.with_timezone(&chrono::Local).date_naive())
        .unwrap_or_default()
}

fn day(raw: &str) -> Result<NaiveDate, &'static str> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| BAD_DATE)
}

fn comment(form: &ProviderForm) -> Result<&str, &'static str> {
    match form.kommentar.trim() {
        "" => Err(NO_COMMENT),
        c => Ok(c),
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The register's refusal in Swedish.
fn refused(change: RegisterChange) -> &'static str {
    match change {
        RegisterChange::Done => "",
        RegisterChange::Unknown => "Vårdgivaren finns inte i registret. Ingenting sparades.",
        RegisterChange::Exists => "Vårdgivaren finns redan i registret; ändra den på dess sida. Ingenting sparades.",
        RegisterChange::NotConnected => "Vårdgivaren är inte ansluten. Ingenting sparades.",
        RegisterChange::AlreadyConnected => "Vårdgivaren är redan ansluten. Ingenting sparades.",
        RegisterChange::DateOutOfOrder => "Datumet ligger före anslutningens början (eller före förra frånkopplingen). Ingenting sparades.",
    }
}

fn action_sv(action: &str) -> &str {
    match action {
        "added" => "Ansluten (tillagd)",
        "changed" => "Uppgifter ändrade",
        "disconnected" => "Frånkopplad",
        "reconnected" => "Ansluten igen",
        "imported" => "Inläst från registerfil",
        other => other,
    }
}

#[derive(Serialize)]
struct Row {
    key: String,
    number: String,
    name: String,
    kansli: String,
    connected: bool,
    periods: String,
    changed: String,
    changed_by: String,
}

fn row(e: &ProviderEntry, today: NaiveDate) -> Row {
    let periods: Vec<String> = e
        .periods
        .iter()
        .map(|p| match p.until {
            Some(until) => format!("{} – {}", p.from, until.pred_opt().unwrap_or(until)),
            None => format!("från {}", p.from),
        })
        .collect();
    Row {
        key: e.key.clone(),
        number: e.number(),
        name: e.name.clone(),
        kansli: e.kansli.clone(),
        connected: e.connected_on(today),
        periods: periods.join(", "),
        changed: crate::clock::format_ms(e.changed_at),
        changed_by: e.changed_by.clone(),
    }
}

/// The list, with the add form (`form`, `error`: a refused addition shown again).
pub(super) async fn providers(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<super::lists::Params>,
) -> Response {
    list_page(&state, &staff, &q, None, None).await
}

async fn list_page(
    state: &WebState,
    staff: &Staff,
    q: &super::lists::Params,
    form: Option<&ProviderForm>,
    error: Option<&str>,
) -> Response {
    let base = match base(state, staff, "vardgivare").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let all = match state.store().provider_entries().await {
        Ok(all) => all,
        Err(e) => return internal(e),
    };
    let search = q.get("s").map(|s| s.trim()).unwrap_or_default();
    let needle = crate::forms::labels::fold(search);
    let digits: String = search.chars().filter(char::is_ascii_digit).collect();
    let today = today(state);
    let found: Vec<Row> = all
        .iter()
        .filter(|e| {
            needle.is_empty()
                || crate::forms::labels::fold(&e.name).contains(&needle)
                || (!digits.is_empty() && e.key.contains(&digits))
        })
        .map(|e| row(e, today))
        .collect();
    let pager = super::lists::Pager {
        path: "/vardgivare",
        q,
        name: "page",
    };
    let (rows, paging) = pager.counted(found);
    let page = context! {
        title => "Anslutna vårdgivare",
        providers => rows,
        search => search,
        paging => paging,
        ..base
    };
    form_page("providers.html.j2", page, form, error, None, today)
}

/// A page of these forms, with what was typed and why it was refused (422), or what was done.
fn form_page(
    template: &str,
    page: Value,
    form: Option<&ProviderForm>,
    error: Option<&str>,
    notice: Option<String>,
    today: NaiveDate,
) -> Response {
    let mut response = render(
        template,
        context! {
            form => form.map(Value::from_serialize),
            today => today.to_string(),
            notice => notice,
            error => error,
            ..page
        },
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// Adds a provider: a valid number (SPEC §2.4), a name, a date and a comment, else nothing.
pub(super) async fn add(
    State(state): State<WebState>,
    staff: Staff,
    Form(form): Form<ProviderForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let q = super::lists::Params::new();
    let today = today(&state);
    let checked = (|| {
        let key = ProviderId::parse(&form.nummer, today)
            .map_err(|_| BAD_NUMBER)?
            .register_key();
        let name = collapse(&form.namn);
        if name.is_empty() {
            return Err(NO_NAME);
        }
        Ok((key, name, day(&form.ansluten)?, comment(&form)?))
    })();
    let (key, name, from, why) = match checked {
        Ok(c) => c,
        Err(e) => return list_page(&state, &staff, &q, Some(&form), Some(e)).await,
    };
    let details = form.details(&name);
    let who = actor(&state, &staff, why);
    match state.store().provider_add(&key, details, from, who).await {
        Ok(RegisterChange::Done) => {
            changed(&state, &staff, "added").await;
            Redirect::to(&format!("/vardgivare/{key}?klart=tillagd")).into_response()
        }
        Ok(other) => list_page(&state, &staff, &q, Some(&form), Some(refused(other))).await,
        Err(e) => internal(e),
    }
}

/// After a change: the daemon's checks read the register again at once (other instances
/// within `register::REFRESH_EVERY`).
async fn changed(state: &WebState, staff: &Staff, what: &str) {
    tracing::info!(user = %staff.username, change = what, "the provider register was changed");
    if let Some(intake) = state.inner.engine.get() {
        if let Ok(register) = state.store().provider_register().await {
            intake.set_providers(register);
        }
    }
}

pub(super) async fn provider(
    State(state): State<WebState>,
    staff: Staff,
    Path(key): Path<String>,
    Query(q): Query<super::lists::Params>,
) -> Response {
    let notice = q.get("klart").map(|what| match what.as_str() {
        "tillagd" => "Vårdgivaren är tillagd i registret.".to_string(),
        "andrad" => "Uppgifterna är sparade.".to_string(),
        "fran" => "Vårdgivaren är frånkopplad från det datumet.".to_string(),
        "igen" => "Vårdgivaren är ansluten igen.".to_string(),
        _ => "Klart.".to_string(),
    });
    let count = |key: &str| q.get(key).and_then(|v| v.parse::<usize>().ok());
    let cases = |n: usize| match n {
        1 => "1 ärende".to_string(),
        n => format!("{n} ärenden"),
    };
    let notice = match (count("havda"), count("kvar")) {
        (Some(n), Some(k)) => Some(format!(
            "Kontrollerat igen: {} hävdes och avsändarna får besked; {} står kvar som avvisade (andra skäl, eller inte ansluten på e-postens datum).",
            cases(n),
            cases(k)
        )),
        _ => notice,
    };
    provider_page(&state, &staff, &key, None, None, notice).await
}

async fn provider_page(
    state: &WebState,
    staff: &Staff,
    key: &str,
    form: Option<&ProviderForm>,
    error: Option<&str>,
    notice: Option<String>,
) -> Response {
    let base = match base(state, staff, "vardgivare").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (entry, events): (ProviderEntry, Vec<ProviderEvent>) =
        match state.store().provider_entry(key).await {
            Ok(Some(found)) => found,
            Ok(None) => return not_found().await,
            Err(e) => return internal(e),
        };
    let today = today(state);
    // Orders rejected before it was connected: offered for a new check while it is connected.
    let rejected = match entry.connected_on(today) {
        true => match register::rejected_not_connected(state.store(), key, state.now()).await {
            Ok(cases) => cases,
            Err(e) => return internal(e),
        },
        false => Vec::new(),
    };
    let rejected: Vec<Value> = rejected
        .iter()
        .map(|c| {
            context! {
                id => c.id,
                received => crate::clock::format_ms(c.created_at),
                subject => c.subject,
            }
        })
        .collect();
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            context! {
                at => crate::clock::format_ms(e.at),
                actor => e.actor,
                action => action_sv(&e.action),
                detail => e.detail,
                comment => e.comment,
            }
        })
        .collect();
    let open = entry.open_period();
    let page = context! {
        title => format!("{} – Anslutna vårdgivare", entry.name),
        p => row(&entry, today),
        note => entry.note,
        open => open.is_some(),
        open_from => open.map(|p| p.from.to_string()),
        events => events,
        rejected => rejected,
        recheck_days => register::RECHECK_DAYS,
        ..base
    };
    form_page("provider.html.j2", page, form, error, notice, today)
}

/// Changes a provider's name, kansli and note, and the start of its open period.
pub(super) async fn change(
    State(state): State<WebState>,
    staff: Staff,
    Path(key): Path<String>,
    Form(form): Form<ProviderForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let name = collapse(&form.namn);
    let checked = (|| {
        if name.is_empty() {
            return Err(NO_NAME);
        }
        // Only a connected provider's form has the date.
        let from = match form.ansluten.trim() {
            "" => None,
            date => Some(day(date)?),
        };
        Ok((from, comment(&form)?))
    })();
    let (from, why) = match checked {
        Ok(c) => c,
        Err(e) => return provider_page(&state, &staff, &key, Some(&form), Some(e), None).await,
    };
    let details = form.details(&name);
    let who = actor(&state, &staff, why);
    let result = state
        .store()
        .provider_change(&key, details, from, who)
        .await;
    settle(&state, &staff, &key, &form, result, "changed", "andrad").await
}

/// Disconnects a provider from a date (`koppla-fran`), or connects it again (`anslut-igen`).
pub(super) async fn disconnect(
    state: State<WebState>,
    staff: Staff,
    key: Path<String>,
    form: Form<ProviderForm>,
) -> Response {
    period(state, staff, key, form, false).await
}

pub(super) async fn reconnect(
    state: State<WebState>,
    staff: Staff,
    key: Path<String>,
    form: Form<ProviderForm>,
) -> Response {
    period(state, staff, key, form, true).await
}

async fn period(
    State(state): State<WebState>,
    staff: Staff,
    Path(key): Path<String>,
    Form(form): Form<ProviderForm>,
    connect: bool,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let checked = day(&form.datum).and_then(|d| Ok((d, comment(&form)?)));
    let (on, why) = match checked {
        Ok(c) => c,
        Err(e) => return provider_page(&state, &staff, &key, Some(&form), Some(e), None).await,
    };
    let who = actor(&state, &staff, why);
    let store = state.store();
    let (result, what, done) = match connect {
        true => (
            store.provider_reconnect(&key, on, who).await,
            "reconnected",
            "igen",
        ),
        false => (
            store.provider_disconnect(&key, on, who).await,
            "disconnected",
            "fran",
        ),
    };
    settle(&state, &staff, &key, &form, result, what, done).await
}

/// The provider's page again: after a change with what was done, else with why not.
async fn settle(
    state: &WebState,
    staff: &Staff,
    key: &str,
    form: &ProviderForm,
    result: Result<RegisterChange, crate::store::StoreError>,
    what: &str,
    done: &str,
) -> Response {
    match result {
        Ok(RegisterChange::Done) => {
            changed(state, staff, what).await;
            Redirect::to(&format!("/vardgivare/{key}?klart={done}")).into_response()
        }
        Ok(RegisterChange::Unknown) => not_found().await,
        Ok(other) => provider_page(state, staff, key, Some(form), Some(refused(other)), None).await,
        Err(e) => internal(e),
    }
}

/// Checks the provider's rejected orders again (`register::recheck_not_connected`).
pub(super) async fn recheck(
    State(state): State<WebState>,
    staff: Staff,
    Path(key): Path<String>,
    Form(form): Form<ProviderForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let register = match state.store().provider_register().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let reply = super::case_page::reply_settings(&state);
    match register::recheck_not_connected(
        state.store(),
        &register,
        &reply,
        &key,
        &staff.username,
        state.now(),
    )
    .await
    {
        Ok(done) => {
            let kept = done.other_reasons.len() + done.not_connected_then.len();
            Redirect::to(&format!(
                "/vardgivare/{key}?havda={}&kvar={kept}",
                done.overturned.len()
            ))
            .into_response()
        }
        Err(e) => internal(e),
    }
}
