//! Ignorerat och karantän: emails that made no case, and processing one again.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;

use super::email_view;
use super::form_image::{read_raw, Unavailable};
use super::render::{base, csrf_refused, error_page, internal, not_found, render};
use super::session::{csrf_ok, CsrfForm, Staff};
use super::{views, WebState};

pub(super) async fn unprocessed(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<super::lists::Params>,
) -> Response {
    // After "Behandla igen" (a redirect here): what happened.
    let notice = q.get("igen").filter(|v| *v == "1").map(|_| {
        "Meddelandet är tillbaka i inkorgen och behandlas igen inom kort. Resultatet visas som ett nytt ärende eller en ny rad här."
    });
    let base = match base(&state, &staff, "ignorerat").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pager = super::lists::Pager {
        path: "/ignorerat",
        q: &q,
        name: "page",
    };
    let limit = super::lists::PAGE_SIZE + 1;
    let (mails, paging) = match state.store().unprocessed_mail(limit, pager.offset()).await {
        Ok(m) => pager.uncounted(m),
        Err(e) => return internal(e),
    };
    let items: Vec<_> = mails.iter().map(views::mail_item).collect();
    render(
        "mail.html.j2",
        context! {
            title => "Ignorerat och karantän",
            mails => items,
            paging => paging,
            notice => notice,
            ..base
        },
    )
}

/// One email that made no case, as it was: why, its header, its text and its attachments by
/// name (read from the kept raw email, shown only when it is the email recorded).
pub(super) async fn show_mail(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let mail = match state.store().mail(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found().await,
        Err(e) => return internal(e),
    };
    let base = match base(&state, &staff, "ignorerat").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let item = views::mail_item(&mail);
    let originals = state.inner.originals.clone();
    let max_bytes = state.inner.max_message_bytes;
    let purged = mail.purged_at.is_some();
    let (source_ref, hash) = (mail.source_ref.clone(), mail.content_hash.clone());
    let email = tokio::task::spawn_blocking(move || {
        if purged {
            return Err(Unavailable::Purged.email_note_sv());
        }
        read_raw(&source_ref, &hash, &originals, max_bytes)
            .map(|raw| email_view::plain_email(&raw))
            .map_err(Unavailable::email_note_sv)
    })
    .await
    .unwrap_or(Err(Unavailable::Failed.email_note_sv()));
    render(
        "mail_one.html.j2",
        context! {
            title => format!("E-post: {}", item.subject()),
            m => item,
            email => email.as_ref().ok(),
            email_note => email.as_ref().err(),
            ..base
        },
    )
}

/// Puts a copy of the raw email back into the Maildir's `new/` under a new name, so the daemon
/// reads it again as a new delivery (the old record stays for the audit).
pub(super) async fn reprocess(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let mail = match state.store().mail(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found().await,
        Err(e) => return internal(e),
    };
    if mail.outcome == "processed" || mail.reprocessed_at.is_some() || mail.purged_at.is_some() {
        return error_page(
            StatusCode::CONFLICT,
            "Kan inte behandlas igen",
            "Meddelandet är redan behandlat, skickat för ny behandling eller gallrat.",
        );
    }
    if !views::retry_may_help(&mail) {
        return error_page(
            StatusCode::CONFLICT,
            "Kan inte behandlas igen",
            "Meddelandet ignorerades på grund av vad det självt innehåller (dubblett, egen e-post, studs eller autosvar) och skulle ignoreras igen.",
        );
    }
    let Some(name) = mail.source_ref.strip_prefix("maildir:") else {
        return error_page(
            StatusCode::CONFLICT,
            "Kan inte behandlas igen",
            "Meddelandet kom inte från brevlådan som tjänsten bevakar, så originalet finns inte här.",
        );
    };
    let now = state.now();
    let root = state.inner.maildir.clone();
    let name = name.to_string();
    let copied =
        tokio::task::spawn_blocking(move || crate::source::Maildir::new(&root).requeue(&name, now))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match copied {
        Ok(()) => {
            if let Err(e) = state.store().mark_reprocessed(&id, now).await {
                return internal(e);
            }
            tracing::info!(message = %id, user = %staff.username, "email queued for processing again");
            Redirect::to("/ignorerat?igen=1").into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, message = %id, "cannot requeue an email");
            error_page(
                StatusCode::CONFLICT,
                "Kan inte behandlas igen",
                "Originalet finns inte längre i brevlådan.",
            )
        }
    }
}
