//! The case page and its actions: the lifecycle's transitions, verification and corrections,
//! releasing held replies or closing those held in doubt.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::{context, Value};
use serde::Deserialize;

use super::render::{base, csrf_refused, error_page, internal, not_found, render};
use super::session::{csrf_ok, BatchForm, Staff};
use super::{email_view, form_image, views, WebState};
use crate::casework::lifecycle::{Action, LifecycleError, Request};
use crate::pipeline::reply::ReplySettings;
use crate::store::{CaseFilter, SettleHeld};

#[derive(Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    comment: Option<String>,
    card_number: Option<String>,
    /// "Numret stämmer med kortet": a number failing its check digit was compared with the card.
    checksum_confirmed: Option<String>,
}

pub(super) async fn case_page(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = q
        .get("klart")
        .and_then(|a| Action::parse(a))
        .map(|a| format!("Klart: ”{}”.", a.label_sv()))
        .or_else(|| {
            let decided = match q.get("granskat")?.as_str() {
                "queued" => "godkändes och är nu att handlägga",
                "rejected" => "avvisades",
                _ => return None,
            };
            let reply = if q.get("svar").is_some_and(|s| s == "1") {
                "Svaret till avsändaren är skickat till utkorgen."
            } else {
                "Inget svar kunde skickas: avsändaren saknar adress."
            };
            Some(format!("Granskat: ärendet {decided}. {reply}"))
        })
        .or_else(|| settled_notice(&q))
        .or_else(|| {
            q.get("skickas_igen").map(|n| match n.as_str() {
                "0" => "Inget misslyckat svar fanns kvar att skicka igen.".to_string(),
                _ => "Svaret skickas igen med nästa utskick.".to_string(),
            })
        })
        .or_else(|| {
            q.get("rattat").map(|n| {
                let fields = if n == "1" {
                    "1 fält rättat"
                } else {
                    "fält rättade"
                };
                let fields = if n == "1" {
                    fields.to_string()
                } else {
                    format!("{n} {fields}")
                };
                format!("{fields}. Inget nytt svar skickades; häv avvisningen om den var fel.")
            })
        });
    let next = match next_case(&state, &id, &q).await {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    let typed = next.map(|next| context! { next => next });
    show_case(&state, &staff, &id, StatusCode::OK, notice, None, typed).await
}

/// After an action (`?klart=`) or a verification (`?granskat=`): the list the case came from
/// and the case to take next from it, in the list's own order, so that staff go on without
/// going back to the list (issue 21).
async fn next_case(
    state: &WebState,
    id: &str,
    q: &std::collections::HashMap<String, String>,
) -> Result<Option<Value>, crate::store::StoreError> {
    let list = |name: &'static str, path: &'static str, st: &str, kind: Option<&str>, fifo| {
        let filter = CaseFilter {
            state: Some(st.to_string()),
            kind: kind.map(str::to_string),
            oldest_first: fifo,
            limit: 2,
            ..CaseFilter::default()
        };
        Some((name, path, filter))
    };
    let from = match (q.get("klart").map(String::as_str), q.get("granskat")) {
        (Some("confirm" | "overturn"), _) => list("Avvisade", "/avvisade", "rejected", None, false),
        (Some("ordered_at_telia"), _) => list(
            "Att beställa",
            "/att-bestalla",
            "queued",
            Some("order"),
            true,
        ),
        (Some("card_ready"), _) => list(
            "Att beställa",
            "/att-bestalla",
            "ordered_at_telia",
            Some("order"),
            true,
        ),
        (Some("handed_out"), _) => list(
            "Att beställa",
            "/att-bestalla",
            "card_ready",
            Some("order"),
            true,
        ),
        (Some("deregistered"), _) => list(
            "Att avregistrera",
            "/att-avregistrera",
            "queued",
            Some("deregistration"),
            false,
        ),
        (_, Some(_)) => list("Att granska", "/att-granska", "held", None, true),
        _ => None,
    };
    let Some((name, path, filter)) = from else {
        return Ok(None);
    };
    let next = state
        .store()
        .list_cases(&filter)
        .await?
        .into_iter()
        .find(|c| c.id != id)
        .map(|c| c.id);
    Ok(Some(context! { list => name, path => path, id => next }))
}

pub(super) async fn show_case(
    state: &WebState,
    staff: &Staff,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    typed: Option<Value>,
) -> Response {
    let detail = match state.store().case_detail(id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Ärendet finns inte",
                &format!("Det finns inget ärende {id}."),
            )
        }
        Err(e) => return internal(e),
    };
    let base = match base(state, staff, "").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let view = match views::case_view(state.store(), &detail).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    // Another open order of the same person at the same unit (SPEC §4.3): for an order a
    // second card, for a deregistration a card still on its way.
    let open_orders = match open_orders_beside(state, &detail.case).await {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let siblings = match state.store().message_cases(&detail.case.message_row).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let originals = state.inner.originals.clone();
    let case = detail.case.clone();
    let max_bytes = state.inner.max_message_bytes;
    let limits = email_view::ReadLimits {
        max_message_bytes: max_bytes,
        max_attachment_bytes: state.inner.parts.limits.max_attachment_bytes,
        max_attachments: state.inner.parts.limits.max_attachments,
    };
    let (form_pages, email) = tokio::task::spawn_blocking(move || {
        let pages = form_image::pages_to_show(&case, &originals, max_bytes)
            .map_err(form_image::Unavailable::note_sv);
        let email = email_view::email_of(&case, &siblings, &originals, limits)
            .map_err(form_image::Unavailable::email_note_sv);
        (pages, email)
    })
    .await
    .unwrap_or_else(|_| {
        (
            Err(form_image::Unavailable::Failed.note_sv()),
            Err(form_image::Unavailable::Failed.email_note_sv()),
        )
    });
    let mut r = render(
        "case.html.j2",
        minijinja::value::merge_maps([
            context! {
                title => format!("Ärende {}", detail.case.id),
                notice => notice,
                error => error,
                form_pages => form_pages.as_ref().ok(),
                form_note => form_pages.as_ref().err(),
                email => email.as_ref().ok(),
                email_note => email.as_ref().err(),
                typed => typed,
                open_orders => open_orders,
            },
            minijinja::Value::from_serialize(&view),
            base,
        ]),
    );
    *r.status_mut() = status;
    r
}

/// The open orders of the case's person at the case's unit, other than the case itself.
async fn open_orders_beside(
    state: &WebState,
    case: &crate::store::CaseRow,
) -> Result<Vec<String>, crate::store::StoreError> {
    let fields: serde_json::Value = serde_json::from_str(&case.fields).unwrap_or_default();
    let field = |k: &str| fields.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let pnr12: String = field("personnummer")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let unit = field("vardenhet_hsaid");
    if pnr12.len() != 12 || unit.is_empty() || case.purged_at.is_some() {
        return Ok(Vec::new());
    }
    let mut orders = state.store().open_orders(&pnr12, unit).await?;
    orders.retain(|o| *o != case.id);
    Ok(orders)
}

/// The corrections of a verification form: `f.<key>=<value>` for every field shown, besides
/// the token. Only values that differ from the stored ones become corrections (verification
/// compares).
pub(super) fn corrections_of(form: &[(String, String)]) -> Vec<(String, String)> {
    form.iter()
        .filter_map(|(k, v)| k.strip_prefix("f.").map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// "Bekräfta" on a held case: saves the corrections, checks again, decides and replies.
pub(super) async fn verify_case(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    run_verification(state, staff, id, form, true).await
}

/// "Rätta fält" on a rejected case: corrections only, no reply.
pub(super) async fn correct_case(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    run_verification(state, staff, id, form, false).await
}

pub(super) async fn run_verification(
    state: WebState,
    staff: Staff,
    id: String,
    form: Vec<(String, String)>,
    confirm: bool,
) -> Response {
    let token = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !csrf_ok(&staff, token) {
        return csrf_refused();
    }
    let engine = match state.engine().await {
        Ok(e) => e,
        Err(e) => return internal(format!("{e:#}")),
    };
    // "Avvisa" on a held case: the reading stands as it was read, and so does the rejection.
    let reject_as_read = confirm && form.iter().any(|(k, v)| k == "utfall" && v == "avvisa");
    let request = crate::casework::verification::VerifyRequest {
        case_id: id.clone(),
        actor: staff.username.clone(),
        corrections: if reject_as_read {
            Vec::new()
        } else {
            corrections_of(&form)
        },
        confirm,
    };
    use crate::casework::verification::VerifyError as E;
    match crate::casework::verification::verify(state.store(), &engine, state.now(), request).await
    {
        Ok(done) if confirm => Redirect::to(&format!(
            "/arende/{id}?granskat={}&svar={}",
            done.state,
            u8::from(done.reply.is_some())
        ))
        .into_response(),
        Ok(done) => {
            Redirect::to(&format!("/arende/{id}?rattat={}", done.corrected.len())).into_response()
        }
        Err(E::NotFound(_)) => not_found().await,
        Err(e) => {
            let status = match &e {
                E::Purged | E::NotAllowed(_) | E::AlreadyAnswered | E::Conflict(_) | E::NoForm => {
                    StatusCode::CONFLICT
                }
                E::UnknownField { .. } | E::SignatureValue(_) | E::Nothing | E::WouldReject(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                E::Directory(_) => {
                    tracing::warn!(error = %e, case = %id, "verification: KIV cannot be reached");
                    StatusCode::SERVICE_UNAVAILABLE
                }
                E::NotFound(_) | E::Reply(_) | E::Store(_) | E::Corrupt(_) => {
                    tracing::error!(error = %e, case = %id, "verification failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            show_case(
                &state,
                &staff,
                &id,
                status,
                None,
                Some(e.message_sv()),
                None,
            )
            .await
        }
    }
}

/// How the service signs its notices.
pub(super) fn reply_settings(state: &WebState) -> ReplySettings<'_> {
    let intake = &state.inner.intake;
    ReplySettings {
        own_address: &intake.own_address,
        display_name: &intake.display_name,
        office_address: &intake.office_address,
    }
}

/// "Bekräfta markerade" on Avvisade (issue 21): the ticked rejections confirmed one by one,
/// each its own transition audited as this member of staff's, with one optional comment; back
/// to the list with how many were confirmed and how many could not be (another member of
/// staff moved them meanwhile, or they were no longer rejections).
pub(super) async fn confirm_selected(
    State(state): State<WebState>,
    staff: Staff,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = BatchForm(fields);
    if !form.csrf_ok(&staff) {
        return csrf_refused();
    }
    let comment = form.one("kommentar").map(str::to_string);
    let reply = reply_settings(&state);
    let (mut done, mut refused) = (0usize, 0usize);
    for id in form.all("arende") {
        let request = Request {
            case_id: id.clone(),
            action: Action::Confirm,
            actor: staff.username.clone(),
            comment: comment.clone(),
            card_number: None,
            checksum_confirmed: false,
        };
        match crate::casework::lifecycle::apply(state.store(), &reply, state.now(), request).await {
            Ok(_) => done += 1,
            Err(e @ (LifecycleError::Notice(_) | LifecycleError::Store(_))) => {
                tracing::error!(error = %e, case = %id, "batch confirmation failed");
                return internal(e);
            }
            Err(e) => {
                tracing::info!(case = %id, error = %e, "batch confirmation refused one case");
                refused += 1;
            }
        }
    }
    tracing::info!(user = %staff.username, confirmed = done, refused, "rejections confirmed in a batch");
    Redirect::to(&format!("/avvisade?bekraftade={done}&ej={refused}")).into_response()
}

/// What Avvisade says after a batch confirmation (`?bekraftade=<n>&ej=<m>`).
pub(super) fn batch_notice(q: &std::collections::HashMap<String, String>) -> Option<String> {
    let done: usize = q.get("bekraftade")?.parse().ok()?;
    let refused: usize = q.get("ej").and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut text = match done {
        0 => "Ingen avvisning bekräftades.".to_string(),
        1 => "1 avvisning bekräftad.".to_string(),
        n => format!("{n} avvisningar bekräftade."),
    };
    match refused {
        0 => {}
        1 => text.push_str(" 1 ärende kunde inte bekräftas: det har ändrats sedan listan visades."),
        n => text.push_str(&format!(
            " {n} ärenden kunde inte bekräftas: de har ändrats sedan listan visades."
        )),
    }
    Some(text)
}

pub(super) async fn case_action(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let Some(action) = Action::parse(&form.action) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Okänd åtgärd",
            "Åtgärden finns inte.",
        );
    };
    let reply = reply_settings(&state);
    // What was typed comes back with an error, so that nothing has to be typed again.
    let typed = context! {
        action => action.as_str(),
        card_number => form.card_number.clone(),
        comment => form.comment.clone(),
    };
    let request = Request {
        case_id: id.clone(),
        action,
        actor: staff.username.clone(),
        comment: form.comment,
        card_number: form.card_number,
        checksum_confirmed: form.checksum_confirmed.is_some_and(|v| v == "1"),
    };
    match crate::casework::lifecycle::apply(state.store(), &reply, state.now(), request).await {
        Ok(_) => Redirect::to(&format!("/arende/{id}?klart={}", action.as_str())).into_response(),
        Err(LifecycleError::NotFound(_)) => not_found().await,
        Err(e) => {
            let status = match &e {
                LifecycleError::NotAllowed { .. }
                | LifecycleError::Conflict(_)
                | LifecycleError::Purged => StatusCode::CONFLICT,
                LifecycleError::CommentRequired(_)
                | LifecycleError::CardNumberRequired
                | LifecycleError::InvalidCardNumber
                | LifecycleError::ChecksumUnconfirmed
                | LifecycleError::SameCardNumber => StatusCode::UNPROCESSABLE_ENTITY,
                LifecycleError::NotFound(_)
                | LifecycleError::Notice(_)
                | LifecycleError::Store(_) => {
                    tracing::error!(error = %e, case = %id, "case transition failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let typed = minijinja::value::merge_maps([
                context! { checksum => matches!(e, LifecycleError::ChecksumUnconfirmed) },
                typed,
            ]);
            show_case(
                &state,
                &staff,
                &id,
                status,
                None,
                Some(e.message_sv()),
                Some(typed),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    /// One reply of the case (the "Spärrade svar" list); all its held replies without it.
    svar: Option<String>,
    /// `sparrade-svar`: back to that list afterwards, else to the case.
    tillbaka: Option<String>,
}

/// The query key that brings how many held replies were settled back to the page, and
/// what the page then says for none, one and several of them.
fn settle_texts(how: SettleHeld) -> (&'static str, [&'static str; 3]) {
    match how {
        SettleHeld::Send => (
            "slappt",
            [
                "Inget spärrat svar fanns kvar att skicka (någon annan kan ha skickat det).",
                "Det spärrade svaret skickas nu, förbi gränsen för antal svar.",
                "{n} spärrade svar skickas nu, förbi gränsen för antal svar.",
            ],
        ),
        SettleHeld::Delivered => (
            "levererat",
            [
                "Inget svar med osäker leverans fanns kvar (någon annan kan ha hanterat det).",
                "Svaret är markerat som levererat och skickas inte igen.",
                "{n} svar är markerade som levererade och skickas inte igen.",
            ],
        ),
    }
}

/// What the page says after held replies were released (`?slappt=<n>`) or replies in doubt
/// marked as delivered (`?levererat=<n>`).
pub(super) fn settled_notice(q: &std::collections::HashMap<String, String>) -> Option<String> {
    [SettleHeld::Send, SettleHeld::Delivered]
        .into_iter()
        .find_map(|how| {
            let (key, [none, one, several]) = settle_texts(how);
            let n = q.get(key)?.parse::<usize>().ok()?;
            Some(match n {
                0 => none.to_string(),
                1 => one.to_string(),
                n => several.replace("{n}", &n.to_string()),
            })
        })
}

/// Closes a case's replies held in doubt that did arrive (staff found them in the relay's
/// log): recorded as sent, never sent again. One reply from the "Spärrade svar" list, or all
/// of the case's from its page.
pub(super) async fn delivered_replies(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    settle_replies(state, staff, id, form, SettleHeld::Delivered).await
}

/// Sends a case's replies held by the rate limit after all (from the case page, or one reply
/// from the "Spärrade svar" list).
pub(super) async fn release_replies(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    settle_replies(state, staff, id, form, SettleHeld::Send).await
}

/// Sends a failed reply again after staff fixed its cause (issue 24): it becomes pending once
/// (`Store::resend_failed`, audited); back to the case with what happened.
pub(super) async fn resend_reply(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let reply = form.svar.as_deref().filter(|s| !s.is_empty());
    match state
        .store()
        .resend_failed(&id, reply, &staff.username, state.now())
        .await
    {
        Ok(ids) => {
            tracing::info!(case = %id, user = %staff.username, replies = ids.len(), "failed replies sent again");
            Redirect::to(&format!("/arende/{id}?skickas_igen={}#replies", ids.len()))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

/// Either way out for held replies; back to the list or the case with how many, which the
/// page names (`settled_notice`).
async fn settle_replies(
    state: WebState,
    staff: Staff,
    id: String,
    form: ReleaseForm,
    how: SettleHeld,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let reply = form.svar.as_deref().filter(|s| !s.is_empty());
    match state
        .store()
        .settle_held(&id, reply, &staff.username, state.now(), how)
        .await
    {
        Ok(n) => {
            tracing::info!(case = %id, user = %staff.username, replies = n, settled = ?how, "held replies settled");
            let (key, _) = settle_texts(how);
            let to = match form.tillbaka.as_deref() {
                Some("sparrade-svar") => format!("/sparrade-svar?{key}={n}"),
                _ => format!("/arende/{id}?{key}={n}#replies"),
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => internal(e),
    }
}
