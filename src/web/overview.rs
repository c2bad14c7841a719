//! Översikt, where staff land after logging in: today's new cases by kind and decision, what
//! waits in each list and since when, and how the mailbox, KIV, the reply sink and the store
//! stand as the daemon last saw them (what `/readyz` knows; "not used yet" where this process
//! does not use a component, e.g. `serve` without the daemon).

use axum::extract::State;
use axum::response::Response;
use minijinja::context;
use serde::Serialize;

use super::render::{base, internal, render};
use super::session::Staff;
use super::{views, WebState};
use crate::clock::format_ms;
use crate::telemetry::{component_problem_now, component_state, Component, ComponentState};

/// One list of the overview: its name, link, how many wait and since when.
#[derive(Serialize)]
struct Waiting {
    name: &'static str,
    href: &'static str,
    count: i64,
    oldest: Option<String>,
}

/// One outside part and how it stands.
#[derive(Serialize)]
struct Part {
    name: &'static str,
    state: String,
    failing: bool,
}

/// Midnight, local time, of the day `now_ms` falls on.
fn start_of_day(now_ms: i64) -> i64 {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .and_then(|now| {
            super::lists::local_midnight_ms(now.with_timezone(&chrono::Local).date_naive())
        })
        .unwrap_or(now_ms)
}

fn part(name: &'static str, component: Component) -> Part {
    let (state, failing) = match component_state(component) {
        ComponentState::Unknown => ("inte använd ännu".to_string(), false),
        ComponentState::Ok { since_ms } => {
            (format!("fungerar sedan {}", format_ms(since_ms)), false)
        }
        ComponentState::Failing { since_ms, failures } => {
            let why = component_problem_now(component)
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            (
                format!(
                    "fungerar inte sedan {} ({failures} fel i rad){why}",
                    format_ms(since_ms)
                ),
                true,
            )
        }
    };
    Part {
        name,
        state,
        failing,
    }
}

pub(super) async fn overview(State(state): State<WebState>, staff: Staff) -> Response {
    let base = match base(&state, &staff, "oversikt").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let store = state.store();
    let (counts, oldest, today) = match tokio::try_join!(
        store.queue_counts(),
        store.oldest_waiting(),
        store.received_since(start_of_day(state.now())),
    ) {
        Ok(all) => all,
        Err(e) => return internal(e),
    };
    let since = |ms: Option<i64>| ms.map(format_ms);
    let lists = vec![
        Waiting {
            name: "Avvisade",
            href: "/avvisade",
            count: counts.rejected,
            oldest: since(oldest.rejected),
        },
        Waiting {
            name: "Att granska",
            href: "/att-granska",
            count: counts.held,
            oldest: since(oldest.held),
        },
        Waiting {
            name: "Att beställa",
            href: "/att-bestalla",
            count: counts.to_order,
            oldest: since(oldest.to_order),
        },
        Waiting {
            name: "Att avregistrera",
            href: "/att-avregistrera",
            count: counts.to_deregister,
            oldest: since(oldest.to_deregister),
        },
        Waiting {
            name: "Spärrade svar",
            href: "/sparrade-svar",
            count: counts.held_replies,
            oldest: since(oldest.held_replies),
        },
        Waiting {
            name: "Karantän",
            href: "/ignorerat",
            count: counts.quarantined,
            oldest: since(oldest.quarantined),
        },
    ];
    let total: i64 = today.iter().map(|t| t.n).sum();
    let today: Vec<_> = today
        .iter()
        .map(|t| {
            context! {
                kind => views::kind_sv(&t.kind),
                decision => if t.decision == "rejected" { "avvisade" } else { "godkända" },
                n => t.n,
            }
        })
        .collect();
    let parts = vec![
        part("Inkorgen (e-post in)", Component::Mailbox),
        part("KIV (katalogen)", Component::Directory),
        part("Utgående e-post", Component::Sink),
        part("Databasen", Component::Store),
    ];
    render(
        "overview.html.j2",
        context! {
            title => "Översikt",
            today => today,
            total => total,
            lists => lists,
            parts => parts,
            ..base
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_day_starts_at_local_midnight() {
        let now = chrono::Local::now().timestamp_millis();
        let start = super::start_of_day(now);
        assert!(start <= now && now - start < crate::clock::DAY_MS);
        assert_eq!(super::start_of_day(start), start);
    }
}
