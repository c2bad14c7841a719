//! Spärrade svar: every reply the per-recipient rate limit held back, across cases, with the
//! release of the case page (`case_page::release_replies`, one reply at a time here).

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;

use super::case_page::released_notice;
use super::render::{base, internal, render};
use super::session::Staff;
use super::{views, WebState};

const LIST_LIMIT: i64 = 500;

pub(super) async fn held_replies(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let base = match base(&state, &staff, "sparrade").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let held = match state.store().held_replies(LIST_LIMIT).await {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let items: Vec<_> = held.iter().map(views::held_reply_item).collect();
    render(
        "held_replies.html.j2",
        context! {
            title => "Spärrade svar",
            replies => items,
            notice => q.get("slappt").and_then(|n| released_notice(n)),
            ..base
        },
    )
}
