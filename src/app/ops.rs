//! The ops endpoint of `run`: `/healthz` for liveness and `/metrics` in the Prometheus text
//! format, on a local address (`[http] listen`).

use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::Store;
use crate::telemetry as t;

#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: PrometheusHandle,
}

/// Binds `listen` and serves the endpoint in the background. Fails at once when the address
/// cannot be bound, so that a wrong `http.listen` stops the daemon at start-up.
pub async fn start(
    listen: &str,
    store: Store,
    extra: Option<Router>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let metrics = t::install_metrics().context("cannot set up the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(listen.trim())
        .await
        .with_context(|| format!("cannot listen on {listen} (http.listen)"))?;
    let addr = listener.local_addr()?;
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState { store, metrics });
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
    tracing::info!(listen = %addr, "serving /healthz and /metrics");
    Ok((addr, task))
}

async fn healthz(State(state): State<OpsState>) -> impl IntoResponse {
    // Healthy means the process runs and its store answers; an LDAP outage is not ill health
    // (emails wait, as they should), it shows in the metrics.
    match state.store.counts().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
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
