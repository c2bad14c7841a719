//! The ops endpoint of `run`: `/healthz` for liveness, `/readyz` for readiness (the store
//! answers) and `/metrics` in the Prometheus text format, on a local address (`[http] listen`).

use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::source::{ConnectionStatus, LeaseStatus};
use crate::store::Store;
use crate::telemetry as t;

/// What `/readyz` shows beside the store: the IMAP session and lease (IMAP source only).
#[derive(Clone, Default)]
pub struct Readiness {
    pub imap: Option<ConnectionStatus>,
    pub lease: Option<LeaseStatus>,
}

#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: PrometheusHandle,
    ready: Readiness,
}

/// Binds `listen` and serves the endpoint in the background. Fails at once when the address
/// cannot be bound, so that a wrong `http.listen` stops the daemon at start-up.
pub async fn start(
    listen: &str,
    store: Store,
    ready: Readiness,
    extra: Option<Router>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let metrics = t::install_metrics().context("cannot set up the metrics recorder")?;
    if let Some(lease) = &ready.lease {
        lease.publish();
    }
    let listener = tokio::net::TcpListener::bind(listen.trim())
        .await
        .with_context(|| format!("cannot listen on {listen} (http.listen)"))?;
    let addr = listener.local_addr()?;
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState {
            store,
            metrics,
            ready,
        });
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let task = tokio::spawn(async move {
        // Connection info: the staff pages limit failed logins per client address.
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!(error = %e, "the ops endpoint stopped");
        }
    });
    tracing::info!(listen = %addr, "serving /healthz, /readyz and /metrics");
    Ok((addr, task))
}

/// Liveness (for systemd or a supervisor): the process runs and serves. A store that does not
/// answer is not a reason to restart it (it waits and goes on); that is `/readyz`.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Readiness (for a load balancer in front of the staff pages): 200 only when the store
/// answers a trivial query. The body also says, as text, how the IMAP session and the lease
/// stand; an instance that waits for the lease is ready (it serves pages and sends replies).
async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let store = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.store.server_version(),
    )
    .await;
    let (code, mut body) = match store {
        Ok(Ok(_)) => (StatusCode::OK, "ready\nstore: ok\n".to_string()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready\nstore: unavailable\n".to_string(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready\nstore: no answer within 5 s\n".to_string(),
        ),
    };
    if let Some(imap) = &state.ready.imap {
        body.push_str(&format!("imap: {}\n", imap.get().as_str()));
    }
    if let Some(lease) = &state.ready.lease {
        let held = if lease.held() { "held" } else { "not held" };
        body.push_str(&format!("lease: {held} by instance {}\n", lease.instance));
    }
    (code, body)
}

async fn metrics_text(State(state): State<OpsState>) -> impl IntoResponse {
    // Gauges that mirror the store are read fresh at each scrape.
    if let Ok(c) = state.store.counts().await {
        metrics::gauge!(t::OUTBOX_PENDING).set(c.outbox_pending as f64);
        metrics::gauge!(t::OUTBOX_FAILED).set(c.outbox_failed as f64);
        metrics::gauge!(t::LDAP_WAITING).set(c.kiv_waiting as f64);
    }
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
