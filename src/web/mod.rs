//! The staff review pages (issue 5): server-rendered Swedish HTML over axum, no JavaScript.
//! Everything except the public form downloads needs a login; every form carries the
//! session's CSRF token; all output goes through minijinja with HTML auto-escaping, because
//! subjects, senders and file names come from strangers.
//!
//! [`router`] builds the routes; `run` serves them on `[web] listen` (health and metrics can be
//! merged onto the same `Router`).

pub mod auth;
mod case_page;
mod client;
mod email_view;
mod form_image;
mod held_replies;
mod ignored;
mod lists;
mod login;
mod overview;
mod page_images;
mod providers;
mod public;
mod render;
mod session;
pub mod settings;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::header::{self, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::clock::Clock;
use crate::pipeline::IntakeParts;
use crate::pipeline::IntakeSettings;
use crate::store::Store;
pub use session::Staff;
pub use settings::{HttpSettings, WebSettings};

/// What the pages share.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    web: WebSettings,
    intake: IntakeSettings,
    maildir: PathBuf,
    originals: crate::originals::Originals,
    max_message_bytes: usize,
    clock: Clock,
    /// `[http] trusted_proxies`: their `X-Forwarded-For` names the client.
    proxies: Vec<client::Cidr>,
    /// `[http] tls`: send HSTS.
    tls: bool,
    /// Pages rendered at once (pdftoppm, image decoding): the machine has few cores.
    renders: tokio::sync::Semaphore,
    /// The checks staff's verification runs again (KIV, the register): the daemon's own, or
    /// loaded from `parts` the first time it is needed.
    engine: tokio::sync::OnceCell<Arc<crate::pipeline::Intake>>,
    parts: IntakeParts,
}

/// What the staff pages are built from, gathered by `config::Settings::web_parts` (the pages do
/// not know the whole configuration).
#[derive(Debug, Clone)]
pub struct WebParts {
    pub web: WebSettings,
    pub http: HttpSettings,
    /// The watched Maildir: "Behandla igen" puts an email back into its `new/`.
    pub maildir: PathBuf,
    /// The checks a verification runs again, when the daemon's own intake is not given.
    pub intake: IntakeParts,
}

impl WebState {
    pub fn new(store: Store, settings: &WebParts, clock: Clock) -> WebState {
        WebState {
            inner: Arc::new(Inner {
                store,
                web: settings.web.clone(),
                intake: settings.intake.intake.clone(),
                maildir: settings.maildir.clone(),
                originals: settings.intake.originals.clone(),
                max_message_bytes: settings.intake.limits.max_message_bytes,
                clock,
                // `check-config` reports a bad entry; here it is left out.
                proxies: settings.http.proxies().unwrap_or_else(|bad| {
                    tracing::warn!(entry = %bad, "http.trusted_proxies: not an address or CIDR block");
                    Vec::new()
                }),
                tls: settings.http.tls,
                renders: tokio::sync::Semaphore::new(2),
                engine: tokio::sync::OnceCell::new(),
                parts: settings.intake.clone(),
            }),
        }
    }

    /// Like [`WebState::new`], with the intake whose checks a verification runs again.
    pub fn with_intake(
        store: Store,
        settings: &WebParts,
        intake: Arc<crate::pipeline::Intake>,
        clock: Clock,
    ) -> WebState {
        let state = WebState::new(store, settings, clock);
        let _ = state.inner.engine.set(intake);
        state
    }

    async fn engine(&self) -> anyhow::Result<Arc<crate::pipeline::Intake>> {
        let engine = self
            .inner
            .engine
            .get_or_try_init(|| async {
                let settings = self.inner.parts.clone();
                tokio::task::spawn_blocking(move || crate::pipeline::Intake::load(settings))
                    .await?
                    .map(Arc::new)
            })
            .await?;
        Ok(Arc::clone(engine))
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// All routes of the staff pages and the public form page.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(login::home))
        .route("/logga-in", get(login::login_page).post(login::login))
        .route("/logga-ut", post(login::logout))
        .route("/oversikt", get(overview::overview))
        .route("/avvisade", get(lists::rejected))
        .route("/att-bestalla", get(lists::to_order))
        .route("/att-avregistrera", get(lists::to_deregister))
        .route("/att-granska", get(lists::to_verify))
        .route("/avslutade", get(lists::closed))
        .route(
            "/arende/{id}",
            get(case_page::case_page).post(case_page::case_action),
        )
        .route(
            "/arende/{id}/sida/{file}",
            get(page_images::form_page_image),
        )
        .route("/arende/{id}/slapp-svar", post(case_page::release_replies))
        .route("/arende/{id}/skicka-igen", post(case_page::resend_reply))
        .route(
            "/arende/{id}/svar-levererat",
            post(case_page::delivered_replies),
        )
        .route(
            "/arende/{id}/falt/{file}",
            get(page_images::field_crop_image),
        )
        .route("/arende/{id}/granska", post(case_page::verify_case))
        .route("/arende/{id}/ratta", post(case_page::correct_case))
        .route("/sok", get(lists::search))
        .route("/avvisade/bekrafta", post(case_page::confirm_selected))
        .route("/sparrade-svar", get(held_replies::held_replies))
        .route("/sparrade-svar/slapp", post(held_replies::release_bulk))
        .route("/ignorerat", get(ignored::unprocessed))
        .route("/ignorerat/{id}", get(ignored::show_mail))
        .route(
            "/vardgivare",
            get(providers::providers).post(providers::add),
        )
        .route("/vardgivare/{key}", get(providers::provider))
        .route("/vardgivare/{key}/andra", post(providers::change))
        .route("/vardgivare/{key}/koppla-fran", post(providers::disconnect))
        .route("/vardgivare/{key}/anslut-igen", post(providers::reconnect))
        .route(
            "/vardgivare/{key}/kontrollera-igen",
            post(providers::recheck),
        )
        .route("/ignorerat/{id}/igen", post(ignored::reprocess))
        .route("/blanketter", get(public::forms_page))
        .route("/blanketter/{file}", get(public::form_pdf))
        .route("/stil.css", get(public::style))
        .fallback(render::not_found)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn security_headers(
    axum::extract::State(state): axum::extract::State<WebState>,
    mut response: Response,
) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.inner.tls {
        // Served over HTTPS (`[http] tls`): browsers stay on HTTPS for a year.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry personal data: no copies in shared or browser caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
