//! Spärrade svar: every reply the per-recipient rate limit held back or held in doubt (its
//! SMTP delivery unanswered, `Store::reply_in_doubt`), across cases, with the release of the
//! case page (`case_page::release_replies`, one reply at a time), or in bulk: the ticked rows,
//! or every reply the rate limit holds for one recipient (`release_bulk`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;

use super::case_page::settled_notice;
use super::render::{base, csrf_refused, internal, render};
use super::session::{BatchForm, Staff};
use super::{views, WebState};
use crate::store::SettleHeld;

pub(super) async fn held_replies(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<super::lists::Params>,
) -> Response {
    let base = match base(&state, &staff, "sparrade").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pager = super::lists::Pager {
        path: "/sparrade-svar",
        q: &q,
        name: "page",
    };
    let limit = super::lists::PAGE_SIZE + 1;
    let (held, paging) = match state.store().held_replies(limit, pager.offset()).await {
        Ok(h) => pager.uncounted(h),
        Err(e) => return internal(e),
    };
    let items: Vec<_> = held.iter().map(views::held_reply_item).collect();
    render(
        "held_replies.html.j2",
        context! {
            title => "Spärrade svar",
            replies => items,
            paging => paging,
            notice => settled_notice(&q),
            ..base
        },
    )
}

/// Releases held replies in bulk: the ticked rows (`svar`, repeated) and, with `mottagare`,
/// every reply the rate limit holds for that recipient (never those held in doubt: each of
/// them needs a look at the relay's log first). Each goes through `settle_held` on its own
/// case, audited as a release by this member of staff; back to the list with the count.
pub(super) async fn release_bulk(
    State(state): State<WebState>,
    staff: Staff,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = BatchForm(fields);
    if !form.csrf_ok(&staff) {
        return csrf_refused();
    }
    let mut chosen = form.all("svar");
    if let Some(recipient) = form.one("mottagare") {
        match state.store().held_by_limit_to(recipient).await {
            Ok(ids) => chosen.extend(ids),
            Err(e) => return internal(e),
        }
    }
    chosen.sort();
    chosen.dedup();
    let mut released = 0;
    for reply in &chosen {
        // A reply's id is `<case id>-<n>`.
        let Some((case_id, _)) = reply.rsplit_once('-') else {
            continue;
        };
        match state
            .store()
            .settle_held(
                case_id,
                Some(reply),
                &staff.username,
                state.now(),
                SettleHeld::Send,
            )
            .await
        {
            Ok(n) => released += n,
            Err(e) => return internal(e),
        }
    }
    tracing::info!(user = %staff.username, replies = released, "held replies released in bulk");
    Redirect::to(&format!("/sparrade-svar?slappt={released}")).into_response()
}
