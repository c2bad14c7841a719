//! The case lists: Avvisade (with its filters), Att beställa, Att avregistrera, Att granska,
//! Avslutade (with filters and a period), and the search. Every list is shown a page at a
//! time, with the number of cases it holds; a filter value the page does not know is named
//! in a message, not silently dropped.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::{context, Value};
use serde::Serialize;

use super::render::{base, internal, render};
use super::session::Staff;
use super::{views, WebState};
use crate::store::{CaseFilter, CaseSummary};

/// Cases on one page of a list.
pub(super) const PAGE_SIZE: i64 = 50;

pub(super) type Params = HashMap<String, String>;

pub(super) fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn param(q: &Params, name: &str) -> Option<String> {
    non_empty(q.get(name).cloned())
}

/// Which page of a list to show: `?<name>=N`, 1 for anything else.
fn page_number(q: &Params, name: &str) -> i64 {
    param(q, name)
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// The page `path?query` with `name` set to `value` (and the other parameters kept).
fn link(path: &str, q: &Params, name: &str, value: i64) -> String {
    let mut pairs: Vec<(&str, String)> = q
        .iter()
        .filter(|(k, v)| k.as_str() != name && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if value > 1 {
        pairs.push((name, value.to_string()));
    }
    pairs.sort();
    match serde_urlencoded::to_string(&pairs) {
        Ok(s) if !s.is_empty() => format!("{path}?{s}"),
        _ => path.to_string(),
    }
}

/// "Visar 51–100 av 123" with links to the pages before and after.
#[derive(Serialize)]
pub(super) struct Paging {
    first: i64,
    last: i64,
    total: i64,
    /// Whether `total` is the list's count (the search only knows whether there is more).
    counted: bool,
    previous: Option<String>,
    next: Option<String>,
    /// A page past the list's end was asked for (its "previous" link is the last page).
    beyond: bool,
}

/// One page of a list: the page asked for by `?<name>=N` of `path`.
pub(super) struct Pager<'a> {
    pub(super) path: &'a str,
    pub(super) q: &'a Params,
    pub(super) name: &'a str,
}

impl Pager<'_> {
    fn page(&self) -> i64 {
        page_number(self.q, self.name)
    }

    pub(super) fn offset(&self) -> i64 {
        (self.page() - 1) * PAGE_SIZE
    }

    /// This page of an uncounted list, from `rows` fetched with [`PAGE_SIZE`]` + 1` as the
    /// limit (one row more than a page tells whether there is a next page).
    pub(super) fn uncounted<T>(&self, mut rows: Vec<T>) -> (Vec<T>, Paging) {
        let more = rows.len() as i64 > PAGE_SIZE;
        rows.truncate(PAGE_SIZE as usize);
        let paging = self.paging(rows.len(), None, more);
        (rows, paging)
    }

    /// This page of a list held whole in memory (counted).
    pub(super) fn counted<T>(&self, all: Vec<T>) -> (Vec<T>, Paging) {
        let total = all.len() as i64;
        let rows: Vec<T> = all
            .into_iter()
            .skip(self.offset().max(0) as usize)
            .take(PAGE_SIZE as usize)
            .collect();
        let paging = self.paging(rows.len(), Some(total), false);
        (rows, paging)
    }

    /// `shown` rows were shown out of `total` (`None`: not counted; then one more row than
    /// shown was asked for to know whether a next page exists).
    fn paging(&self, shown: usize, total: Option<i64>, more: bool) -> Paging {
        let page = self.page();
        let first = self.offset() + 1;
        let last = self.offset() + shown as i64;
        let next = match total {
            Some(total) => last < total,
            None => more,
        };
        let beyond = shown == 0 && page > 1;
        // Past the end, "previous" is the list's last page (the first when it is empty).
        let previous = match total {
            Some(total) if beyond => Some(((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)),
            _ => (page > 1).then_some(page - 1),
        };
        Paging {
            first: if shown == 0 { 0 } else { first },
            last: if shown == 0 { 0 } else { last },
            total: total.unwrap_or(last),
            counted: total.is_some(),
            previous: previous.map(|p| link(self.path, self.q, self.name, p)),
            next: next.then(|| link(self.path, self.q, self.name, page + 1)),
            beyond,
        }
    }
}

/// One titled table of a list page.
async fn section(
    state: &WebState,
    pager: Pager<'_>,
    filter: CaseFilter,
    table: views::Table,
) -> Result<Value, Response> {
    let filter = CaseFilter {
        limit: PAGE_SIZE,
        offset: pager.offset(),
        ..filter
    };
    let cases = state.store().list_cases(&filter).await.map_err(internal)?;
    let total = state.store().count_cases(&filter).await.map_err(internal)?;
    let paging = pager.paging(cases.len(), Some(total), false);
    Ok(views::section(table, &cases, paging))
}

/// A select of a filter form; `selected` only when it is one of the choices.
#[derive(Serialize)]
struct Select {
    name: &'static str,
    label: &'static str,
    choices: Vec<views::Choice>,
    selected: Option<String>,
}

/// A filter form's value checked against its choices: unknown values are reported.
fn chosen(
    q: &Params,
    name: &'static str,
    label: &'static str,
    choices: Vec<views::Choice>,
    unknown: &mut Vec<String>,
) -> Select {
    let given = param(q, name);
    let selected = given.as_ref().and_then(|v| {
        let found = choices.iter().find(|c| c.code.eq_ignore_ascii_case(v));
        if found.is_none() {
            unknown.push(format!("{label} ”{v}”"));
        }
        found.map(|c| c.code.clone())
    });
    Select {
        name,
        label,
        choices,
        selected,
    }
}

/// The message for filter values that match nothing the page offers.
fn unknown_message(unknown: &[String]) -> Option<String> {
    (!unknown.is_empty()).then(|| {
        format!(
            "Filtret känner inte till {}; det värdet används inte. Välj bland alternativen.",
            unknown.join(" eller ")
        )
    })
}

/// The unit filter's choices: the unit HSA-ids of the list's cases, named as KIV names them
/// (an HSA-id read off a form that KIV does not know is shown as such).
async fn unit_choices(
    state: &WebState,
    filter: &CaseFilter,
) -> Result<Vec<views::Choice>, Response> {
    let ids = state.store().case_units(filter).await.map_err(internal)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let names = match state.engine().await {
        Ok(engine) => engine.unit_names(&ids).await.ok(),
        Err(_) => None,
    };
    if names.is_none() {
        tracing::warn!("KIV did not answer: the unit filter shows HSA-ids only");
    }
    let mut choices: Vec<views::Choice> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let label = match names.as_ref().map(|n| n[i].as_deref()) {
                Some(Some(name)) => format!("{name} ({id})"),
                Some(None) => format!("{id} – finns inte i KIV"),
                None => id.clone(),
            };
            views::Choice::new(id.clone(), label)
        })
        .collect();
    choices.sort_by_key(|c| c.label.to_lowercase());
    Ok(choices)
}

/// Renders a list page.
fn list_page(
    base: Value,
    title: &str,
    intro: Option<&str>,
    filters: Option<Value>,
    error: Option<String>,
    sections: Vec<Value>,
) -> Response {
    render(
        "list.html.j2",
        context! {
            title => title,
            intro => intro,
            filters => filters,
            error => error,
            sections => sections,
            ..base
        },
    )
}

pub(super) async fn rejected(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let base = match base(&state, &staff, "avvisade").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let all = CaseFilter {
        state: Some("rejected".into()),
        ..CaseFilter::default()
    };
    let units = match unit_choices(&state, &all).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut unknown = Vec::new();
    let selects = vec![
        chosen(&q, "reason", "Skäl", views::reason_choices(), &mut unknown),
        chosen(&q, "kind", "Typ", views::kind_choices(), &mut unknown),
        chosen(&q, "unit", "Vårdenhet", units, &mut unknown),
    ];
    let filter = CaseFilter {
        reason: selects[0].selected.clone(),
        kind: selects[1].selected.clone(),
        unit: selects[2].selected.clone(),
        ..all
    };
    let pager = Pager {
        path: "/avvisade",
        q: &q,
        name: "page",
    };
    let table = views::Table::new("Inga avvisade ärenden att granska.")
        .reasons()
        .pick();
    let section = match section(&state, pager, filter, table).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let active = selects.iter().any(|s| s.selected.is_some());
    let base = context! { notice => super::case_page::batch_notice(&q), ..base };
    list_page(
        base,
        "Avvisade",
        Some("Ärenden som avvisades automatiskt, nyast först. Granska och häv avvisningen eller bekräfta den."),
        Some(context! { action => "/avvisade", selects => selects, active => active }),
        unknown_message(&unknown),
        vec![section],
    )
}

pub(super) async fn to_order(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let base = match base(&state, &staff, "bestalla").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut sections = Vec::new();
    for (st, page, heading, empty) in [
        (
            "queued",
            "page",
            "Att beställa hos Telia",
            "Inga beställningar att lägga.",
        ),
        (
            "ordered_at_telia",
            "page_ordered",
            "Beställda hos Telia – väntar på kortet",
            "Inga beställningar väntar på kort.",
        ),
        (
            "card_ready",
            "page_ready",
            "Klara att hämta",
            "Inga kort väntar på att hämtas.",
        ),
    ] {
        // First in, first out.
        let filter = CaseFilter {
            state: Some(st.into()),
            kind: Some("order".into()),
            oldest_first: true,
            ..CaseFilter::default()
        };
        let pager = Pager {
            path: "/att-bestalla",
            q: &q,
            name: page,
        };
        let table = views::Table::new(empty).heading(heading).pickup();
        match section(&state, pager, filter, table).await {
            Ok(s) => sections.push(s),
            Err(r) => return r,
        }
    }
    list_page(base, "Att beställa", None, None, None, sections)
}

/// A list page of one table of `filter`'s cases, a page at a time.
async fn one_table(
    state: &WebState,
    staff: &Staff,
    q: &Params,
    (active, path): (&str, &str),
    (title, intro): (&str, &str),
    filter: CaseFilter,
    table: views::Table,
) -> Response {
    let base = match base(state, staff, active).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pager = Pager {
        path,
        q,
        name: "page",
    };
    match section(state, pager, filter, table).await {
        Ok(s) => list_page(base, title, Some(intro), None, None, vec![s]),
        Err(r) => r,
    }
}

pub(super) async fn to_deregister(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let filter = CaseFilter {
        state: Some("queued".into()),
        kind: Some("deregistration".into()),
        ..CaseFilter::default()
    };
    one_table(
        &state,
        &staff,
        &q,
        ("avregistrera", "/att-avregistrera"),
        (
            "Att avregistrera",
            "Avregistreringar att genomföra. Verksamhetschefen och kortinnehavaren får besked när kortet är avregistrerat.",
        ),
        filter,
        views::Table::new("Inga kort att avregistrera.").reasons(),
    )
    .await
}

pub(super) async fn to_verify(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let filter = CaseFilter {
        state: Some(crate::casework::verification::HELD.into()),
        oldest_first: true,
        ..CaseFilter::default()
    };
    one_table(
        &state,
        &staff,
        &q,
        ("granska", "/att-granska"),
        (
            "Att granska",
            "Ärenden vars avvisning vilar på en osäker tolkning av en skannad blankett, äldst först. Avsändaren har inte fått något svar: jämför fälten med blanketten, rätta dem vid behov och bekräfta.",
        ),
        filter,
        views::Table::new("Inga ärenden att granska.").reasons(),
    )
    .await
}

/// A day given as `YYYY-MM-DD`, as the start of that day in local time (ms); `end` gives the
/// start of the day after (a period's end day is included).
fn day_start_ms(day: &str, end: bool) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    local_midnight_ms(if end { date.succ_opt()? } else { date })
}

/// The start of `date` in local time (ms).
pub(super) fn local_midnight_ms(date: chrono::NaiveDate) -> Option<i64> {
    use chrono::TimeZone;
    chrono::Local
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// Avslutade: handed out, deregistered and confirmed rejections, newest first, by type,
/// outcome and the period in which they were closed.
pub(super) async fn closed(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let base = match base(&state, &staff, "avslutade").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut unknown = Vec::new();
    let outcomes = crate::store::CLOSED_STATES
        .iter()
        .map(|s| {
            views::Choice::new(
                s.to_string(),
                crate::casework::lifecycle::state_label_sv(s).to_string(),
            )
        })
        .collect();
    let selects = vec![
        chosen(&q, "kind", "Typ", views::kind_choices(), &mut unknown),
        chosen(&q, "state", "Utfall", outcomes, &mut unknown),
    ];
    let mut dates = Vec::new();
    let mut period = [None, None];
    for (i, (name, label)) in [("from", "Avslutat från"), ("to", "till och med")]
        .into_iter()
        .enumerate()
    {
        let value = param(&q, name);
        if let Some(v) = &value {
            period[i] = day_start_ms(v, i == 1);
            if period[i].is_none() {
                unknown.push(format!("datumet ”{v}” (skriv ÅÅÅÅ-MM-DD)"));
            }
        }
        dates.push(context! { name => name, label => label, value => value });
    }
    let mut error = unknown_message(&unknown);
    if let [Some(from), Some(to)] = period {
        if from >= to {
            // Nothing can lie in it: said, and the period is not used.
            error = Some("Avslutat från ligger efter till och med; perioden används inte.".into());
            period = [None, None];
        }
    }
    let filter = CaseFilter {
        closed: true,
        kind: selects[0].selected.clone(),
        state: selects[1].selected.clone(),
        changed_from: period[0],
        changed_before: period[1],
        ..CaseFilter::default()
    };
    let pager = Pager {
        path: "/avslutade",
        q: &q,
        name: "page",
    };
    let table = views::Table::new("Inga avslutade ärenden matchar filtren.").closed();
    let section = match section(&state, pager, filter, table).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let active = selects.iter().any(|s| s.selected.is_some()) || period.iter().any(Option::is_some);
    list_page(
        base,
        "Avslutade",
        Some("Utlämnade kort, genomförda avregistreringar och bekräftade avvisningar, senast avslutade först."),
        Some(context! { action => "/avslutade", selects => selects, dates => dates, active => active }),
        error,
        vec![section],
    )
}

pub(super) async fn search(
    State(state): State<WebState>,
    staff: Staff,
    Query(q): Query<Params>,
) -> Response {
    let base = match base(&state, &staff, "sok").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = param(&q, "q");
    let pager = Pager {
        path: "/sok",
        q: &q,
        name: "page",
    };
    let (cases, paging): (Vec<CaseSummary>, Option<Paging>) = match &text {
        Some(text) => match state
            .store()
            .search(text, PAGE_SIZE + 1, pager.offset())
            .await
        {
            Ok(c) => {
                let (c, paging) = pager.uncounted(c);
                (c, Some(paging))
            }
            Err(e) => return internal(e),
        },
        None => (Vec::new(), None),
    };
    let items: Vec<_> = cases.iter().map(views::case_item).collect();
    render(
        "search.html.j2",
        context! { title => "Sök", q => text, cases => items, paging => paging, ..base },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_links_keep_the_filters_and_escape_them() {
        let q = params(&[
            ("reason", "sender_not_manager"),
            ("unit", "SE & co"),
            ("page", "2"),
        ]);
        assert_eq!(
            link("/avvisade", &q, "page", 3),
            "/avvisade?page=3&reason=sender_not_manager&unit=SE+%26+co"
        );
        assert_eq!(
            link("/avvisade", &q, "page", 1),
            "/avvisade?reason=sender_not_manager&unit=SE+%26+co"
        );
        assert_eq!(link("/sok", &params(&[]), "page", 1), "/sok");
    }

    #[test]
    fn paging_counts_from_one_and_links_only_where_there_is_a_page() {
        let q = params(&[("page", "2")]);
        let pager = Pager {
            path: "/avslutade",
            q: &q,
            name: "page",
        };
        assert_eq!(pager.offset(), PAGE_SIZE);
        let p = pager.paging(50, Some(120), false);
        assert_eq!((p.first, p.last, p.total), (51, 100, 120));
        assert_eq!(p.previous.as_deref(), Some("/avslutade"));
        assert_eq!(p.next.as_deref(), Some("/avslutade?page=3"));
        let last = pager.paging(20, Some(70), false);
        assert!(last.next.is_none());
        // A page number that is not one shows the first page.
        for bad in ["0", "-3", "x", ""] {
            assert_eq!(page_number(&params(&[("page", bad)]), "page"), 1);
        }
    }

    #[test]
    fn unknown_filter_values_are_named_and_not_used() {
        let mut unknown = Vec::new();
        let q = params(&[("kind", "order"), ("reason", "no_such_reason")]);
        let kind = chosen(&q, "kind", "Typ", views::kind_choices(), &mut unknown);
        let reason = chosen(&q, "reason", "Skäl", views::reason_choices(), &mut unknown);
        assert_eq!(kind.selected.as_deref(), Some("order"));
        assert_eq!(reason.selected, None);
        let message = unknown_message(&unknown).unwrap();
        assert!(message.contains("Skäl ”no_such_reason”"), "{message}");
        assert!(unknown_message(&[]).is_none());
    }

    #[test]
    fn a_period_ends_after_its_last_day() {
        let from = day_start_ms("2026-12-01", false).unwrap();
        let to = day_start_ms("2026-12-01", true).unwrap();
        assert_eq!(to - from, crate::clock::DAY_MS);
        assert!(day_start_ms("2026-13-01", false).is_none());
        assert!(day_start_ms("igår", false).is_none());
    }
}
