//! Spärrade svar: every reply the per-recipient rate limit held back or held in doubt (its
//! SMTP delivery unanswered, `Store::reply_in_doubt`), across cases, with the release of the
//! case page (`case_page::release_replies`, one reply at a time here).

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;

use super::case_page::settled_notice;
use super::render::{base, internal, render};
use super::session::Staff;
use super::{views, WebState};

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
