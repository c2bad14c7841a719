//! The case lists: Avvisade (with its filters), Att beställa, Att avregistrera, Att granska,
//! and the search.

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::render::{base, internal, render};
use super::session::Staff;
use super::{views, WebState};
use crate::store::CaseFilter;

const LIST_LIMIT: i64 = 500;

#[derive(Deserialize, Default)]
pub(super) struct RejectedQuery {
    reason: Option<String>,
    kind: Option<String>,
    unit: Option<String>,
}

pub(super) fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub(super) async fn rejected(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<RejectedQuery>,
) -> Response {
    // Only known codes reach the query: the filter is a choice, not free text.
    let reason = non_empty(q.reason).filter(|r| crate::case::ReasonCode::parse(r).is_some());
    let kind = non_empty(q.kind).filter(|k| crate::case::CaseKind::parse(k).is_some());
    let unit = non_empty(q.unit);
    let base = match base(&state, &staff, "avvisade").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cases = match state
        .store()
        .list_cases(&CaseFilter {
            state: Some("rejected".into()),
            reason: reason.clone(),
            kind: kind.clone(),
            unit: unit.clone(),
            limit: LIST_LIMIT,
            ..CaseFilter::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let units = match state.store().units_in_state("rejected").await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let filters = context! {
        reasons => views::reason_choices(),
        kinds => views::kind_choices(),
        units => units,
        reason => reason,
        kind => kind,
        unit => unit,
    };
    render(
        "list.html.j2",
        context! {
            title => "Avvisade",
            intro => "Ärenden som avvisades automatiskt, nyast först. Granska och häv avvisningen eller bekräfta den.",
            filters => filters,
            sections => vec![views::section(None, &cases, true, false, "Inga avvisade ärenden att granska.")],
            ..base
        },
    )
}

pub(super) async fn to_order(State(state): State<WebState>, staff: Staff) -> Response {
    let base = match base(&state, &staff, "bestalla").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut sections = Vec::new();
    for (st, heading, empty) in [
        (
            "queued",
            "Att beställa hos Telia",
            "Inga beställningar att lägga.",
        ),
        (
            "ordered_at_telia",
            "Beställda hos Telia – väntar på kortet",
            "Inga beställningar väntar på kort.",
        ),
        (
            "card_ready",
            "Klara att hämta",
            "Inga kort väntar på att hämtas.",
        ),
    ] {
        let cases = match state
            .store()
            .list_cases(&CaseFilter {
                state: Some(st.into()),
                kind: Some("order".into()),
                limit: LIST_LIMIT,
                ..CaseFilter::default()
            })
            .await
        {
            Ok(c) => c,
            Err(e) => return internal(e),
        };
        sections.push(views::section(Some(heading), &cases, false, true, empty));
    }
    render(
        "list.html.j2",
        context! { title => "Att beställa", sections => sections, ..base },
    )
}

pub(super) async fn to_deregister(State(state): State<WebState>, staff: Staff) -> Response {
    let base = match base(&state, &staff, "avregistrera").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cases = match state
        .store()
        .list_cases(&CaseFilter {
            state: Some("queued".into()),
            kind: Some("deregistration".into()),
            limit: LIST_LIMIT,
            ..CaseFilter::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    render(
        "list.html.j2",
        context! {
            title => "Att avregistrera",
            intro => "Avregistreringar att genomföra. Verksamhetschefen och kortinnehavaren får besked när kortet är avregistrerat.",
            sections => vec![views::section(None, &cases, true, false, "Inga kort att avregistrera.")],
            ..base
        },
    )
}

pub(super) async fn to_verify(State(state): State<WebState>, staff: Staff) -> Response {
    let base = match base(&state, &staff, "granska").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cases = match state
        .store()
        .list_cases(&CaseFilter {
            state: Some(crate::casework::verification::HELD.into()),
            limit: LIST_LIMIT,
            oldest_first: true,
            ..CaseFilter::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    render(
        "list.html.j2",
        context! {
            title => "Att granska",
            intro => "Ärenden vars avvisning vilar på en osäker tolkning av en skannad blankett, äldst först. Avsändaren har inte fått något svar: jämför fälten med blanketten, rätta dem vid behov och bekräfta.",
            sections => vec![views::section(None, &cases, true, false, "Inga ärenden att granska.")],
            ..base
        },
    )
}

#[derive(Deserialize, Default)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

pub(super) async fn search(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<SearchQuery>,
) -> Response {
    let base = match base(&state, &staff, "sok").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let q = non_empty(q.q);
    let cases = match &q {
        Some(text) => match state.store().search(text, LIST_LIMIT).await {
            Ok(c) => c,
            Err(e) => return internal(e),
        },
        None => Vec::new(),
    };
    let items: Vec<_> = cases.iter().map(views::case_item).collect();
    render(
        "search.html.j2",
        context! { title => "Sök", q => q, cases => items, ..base },
    )
}
