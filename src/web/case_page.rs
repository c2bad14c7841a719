//! The case page and its actions: the lifecycle's transitions, verification and corrections,
//! releasing held replies or closing those held in doubt.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::{context, Value};
use serde::Deserialize;

use super::render::{base, csrf_refused, error_page, internal, not_found, render};
use super::session::{csrf_ok, Staff};
use super::{email_view, form_image, views, WebState};
use crate::casework::lifecycle::{Action, LifecycleError, Request};
use crate::pipeline::reply::ReplySettings;
use crate::store::SettleHeld;

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
            q.get("rattat").map(|n| {
                format!(
                    "{n} fält rättade. Inget nytt svar skickades; häv avvisningen om den var fel."
                )
            })
        });
    show_case(&state, &staff, &id, StatusCode::OK, notice, None, None).await
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
            },
            view,
            base,
        ]),
    );
    *r.status_mut() = status;
    r
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
    let request = crate::casework::verification::VerifyRequest {
        case_id: id.clone(),
        actor: staff.username.clone(),
        corrections: corrections_of(&form),
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
                E::UnknownField { .. } | E::SignatureValue(_) | E::Nothing => {
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
    let intake = &state.inner.intake;
    let reply = ReplySettings {
        own_address: &intake.own_address,
        display_name: &intake.display_name,
        office_address: &intake.office_address,
    };
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
