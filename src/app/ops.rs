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

/// What `/readyz` shows beside the store: the IMAP session and lease (IMAP source only), KIV
/// (over LDAP; or the snapshot file, whose changed version may fail to read), and the reply
/// sink.
#[derive(Clone, Default)]
pub struct Readiness {
    pub imap: Option<ConnectionStatus>,
    pub lease: Option<LeaseStatus>,
    /// How KIV is read: "ldap" or "snapshot" ("" where nothing is said of it).
    pub directory: &'static str,
    /// What the sink is ("smtp" or "file"); `None` where nothing is sent.
    pub sink: Option<&'static str>,
}

/// One line of `/readyz` for a component seen by the daemon's own work; true when it fails.
fn component_line(body: &mut String, name: &str, what: &str, component: t::Component) -> bool {
    let (text, failing) = match t::component_state(component) {
        t::ComponentState::Unknown => ("not used yet".to_string(), false),
        t::ComponentState::Ok { since_ms } => (
            format!("ok since {}", crate::clock::format_ms(since_ms)),
            false,
        ),
        t::ComponentState::Failing { since_ms, failures } => (
            format!(
                "failing since {} ({failures} failure{} in a row)",
                crate::clock::format_ms(since_ms),
                if failures == 1 { "" } else { "s" }
            ),
            true,
        ),
    };
    let why = t::component_problem_now(component)
        .map(|why| format!(": {why}"))
        .unwrap_or_default();
    body.push_str(&format!("{name}: {what}, {text}{why}\n"));
    failing
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

/// The endpoint while `run` waits for its store at start-up (PostgreSQL not reachable):
/// `/healthz` answers (the process lives and keeps trying), `/readyz` is 503 with why, and
/// everything else is 503 until the store opens. Dropped (`WaitingEndpoint::stop`) before the
/// full endpoint binds the same address.
pub struct WaitingEndpoint {
    why: std::sync::Arc<std::sync::Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl WaitingEndpoint {
    pub async fn start(listen: &str, why: String) -> anyhow::Result<WaitingEndpoint> {
        let why = std::sync::Arc::new(std::sync::Mutex::new(why));
        let listener = tokio::net::TcpListener::bind(listen.trim())
            .await
            .with_context(|| format!("cannot listen on {listen} (http.listen)"))?;
        let shown = std::sync::Arc::clone(&why);
        let readyz = move || async move {
            let why = shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready\nstore: not reachable: {why}\n"),
            )
        };
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .fallback(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "starting: waiting for the store\n",
                )
            });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the ops endpoint stopped");
            }
        });
        Ok(WaitingEndpoint { why, task })
    }

    /// What `/readyz` says now (no personal data, no password: the store's error).
    pub fn set_why(&self, why: String) {
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Stops serving and frees the address.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Liveness (for systemd or a supervisor): the process runs and serves. A store that does not
/// answer is not a reason to restart it (it waits and goes on); that is `/readyz`.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Readiness (for a load balancer in front of the staff pages): 200 only when the store
/// answers a trivial query. The body also says, as text, how the IMAP session and the lease
/// stand, and how KIV over LDAP and the reply sink answered last; an instance that waits for
/// the lease is ready (it serves pages and sends replies). When the IMAP session, KIV or the
/// sink fails, the first line says `ready, degraded: …`: mail waits, nothing is lost, and the
/// staff pages still work.
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
    let mut degraded = Vec::new();
    if let Some(imap) = &state.ready.imap {
        let now = imap.get();
        body.push_str(&format!("imap: {}\n", now.as_str()));
        // An instance without the lease does not read the folder: its session is stopped.
        let reads = state.ready.lease.as_ref().is_none_or(|l| l.held());
        if reads && now != crate::source::ConnectionState::Connected {
            degraded.push("imap");
        }
    }
    if let Some(lease) = &state.ready.lease {
        let held = if lease.held() { "held" } else { "not held" };
        body.push_str(&format!("lease: {held} by instance {}\n", lease.instance));
    }
    if !state.ready.directory.is_empty()
        && component_line(
            &mut body,
            "directory",
            state.ready.directory,
            t::Component::Directory,
        )
    {
        degraded.push("directory");
    }
    if let Some(sink) = state.ready.sink {
        if component_line(&mut body, "sink", sink, t::Component::Sink) {
            degraded.push("sink");
        }
    }
    // Ready means the staff pages can be served; what waits (mail for KIV, replies in the
    // outbox) is named on the first line for ops, without taking the pages away.
    if code == StatusCode::OK && !degraded.is_empty() {
        body = body.replacen(
            "ready\n",
            &format!("ready, degraded: {}\n", degraded.join(", ")),
            1,
        );
    }
    (code, body)
}

async fn metrics_text(State(state): State<OpsState>) -> impl IntoResponse {
    // Gauges that mirror the store are read fresh at each scrape.
    if let Ok(c) = state.store.counts().await {
        metrics::gauge!(t::OUTBOX_PENDING).set(c.outbox_pending as f64);
        metrics::gauge!(t::OUTBOX_FAILED).set(c.outbox_failed as f64);
        metrics::gauge!(t::OUTBOX_HELD).set(c.outbox_held as f64);
        metrics::gauge!(t::OUTBOX_AWAITING).set(c.outbox_awaiting as f64);
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
