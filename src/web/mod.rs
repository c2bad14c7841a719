//! The staff review pages (issue 5): server-rendered Swedish HTML over axum, no JavaScript.
//! Everything except the public form downloads needs a login; every form carries the
//! session's CSRF token; all output goes through minijinja with HTML auto-escaping, because
//! subjects, senders and file names come from strangers.
//!
//! [`router`] builds the routes; `run` serves them on `[web] listen` (health and metrics can be
//! merged onto the same `Router`).

pub mod auth;
mod form_image;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, AutoEscape, Environment, Value};
use serde::Deserialize;

use crate::casework::lifecycle::{Action, LifecycleError, Request};
use crate::clock::Clock;
use crate::config::{IntakeSettings, Settings, WebSettings};
use crate::pipeline::reply::ReplySettings;
use crate::store::{CaseFilter, Store};
use auth::{constant_time_eq, random_token, token_hash, LoginLimiter};

const SESSION_COOKIE: &str = "tjid_session";
const LOGIN_COOKIE: &str = "tjid_login";
const LIST_LIMIT: i64 = 500;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Every page is HTML: escape everything, whatever the template's name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in [
        (
            "base.html.j2",
            include_str!("../../templates/web/base.html.j2"),
        ),
        (
            "_cases.html.j2",
            include_str!("../../templates/web/_cases.html.j2"),
        ),
        (
            "login.html.j2",
            include_str!("../../templates/web/login.html.j2"),
        ),
        (
            "list.html.j2",
            include_str!("../../templates/web/list.html.j2"),
        ),
        (
            "search.html.j2",
            include_str!("../../templates/web/search.html.j2"),
        ),
        (
            "case.html.j2",
            include_str!("../../templates/web/case.html.j2"),
        ),
        (
            "mail.html.j2",
            include_str!("../../templates/web/mail.html.j2"),
        ),
        (
            "forms.html.j2",
            include_str!("../../templates/web/forms.html.j2"),
        ),
        (
            "error.html.j2",
            include_str!("../../templates/web/error.html.j2"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the built-in page templates are valid");
    }
    env
});

const STYLE: &str = include_str!("style.css");

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
    limiter: Mutex<LoginLimiter>,
    /// Pages rendered at once (pdftoppm, image decoding): the machine has few cores.
    renders: tokio::sync::Semaphore,
    /// The checks staff's verification runs again (KIV, the register): the daemon's own, or
    /// loaded from the settings the first time it is needed.
    engine: tokio::sync::OnceCell<Arc<crate::intake::Intake>>,
    settings: Settings,
}

impl WebState {
    pub fn new(store: Store, settings: &Settings, clock: Clock) -> WebState {
        WebState {
            inner: Arc::new(Inner {
                store,
                web: settings.web.clone(),
                intake: settings.intake.clone(),
                maildir: settings.source.maildir.clone(),
                originals: crate::originals::Originals::new(settings),
                max_message_bytes: settings.limits.max_message_bytes,
                clock,
                limiter: Mutex::new(LoginLimiter::default()),
                renders: tokio::sync::Semaphore::new(2),
                engine: tokio::sync::OnceCell::new(),
                settings: settings.clone(),
            }),
        }
    }

    /// Like [`WebState::new`], with the intake whose checks a verification runs again.
    pub fn with_intake(store: Store, intake: Arc<crate::intake::Intake>, clock: Clock) -> WebState {
        let state = WebState::new(store, &intake.settings, clock);
        let _ = state.inner.engine.set(intake);
        state
    }

    async fn engine(&self) -> anyhow::Result<Arc<crate::intake::Intake>> {
        let engine = self
            .inner
            .engine
            .get_or_try_init(|| async {
                let settings = self.inner.settings.clone();
                tokio::task::spawn_blocking(move || crate::intake::Intake::load(settings))
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
        .route("/", get(home))
        .route("/logga-in", get(login_page).post(login))
        .route("/logga-ut", post(logout))
        .route("/avvisade", get(rejected))
        .route("/att-bestalla", get(to_order))
        .route("/att-avregistrera", get(to_deregister))
        .route("/att-granska", get(to_verify))
        .route("/arende/{id}", get(case_page).post(case_action))
        .route("/arende/{id}/sida/{file}", get(form_page_image))
        .route("/arende/{id}/slapp-svar", post(release_replies))
        .route("/arende/{id}/falt/{file}", get(field_crop_image))
        .route("/arende/{id}/granska", post(verify_case))
        .route("/arende/{id}/ratta", post(correct_case))
        .route("/sok", get(search))
        .route("/ignorerat", get(unprocessed))
        .route("/ignorerat/{id}/igen", post(reprocess))
        .route("/blanketter", get(forms_page))
        .route("/blanketter/{file}", get(form_pdf))
        .route("/stil.css", get(style))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
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

async fn security_headers(mut response: Response) -> Response {
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
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry personal data: no copies in shared or browser caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Sessions and CSRF

/// A logged-in staff member. Extracting it from a request without a live session redirects
/// to the login page.
pub struct Staff {
    pub username: String,
    pub display_name: String,
    pub csrf: String,
    token_hash: String,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(state: &WebState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.inner.web.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl FromRequestParts<WebState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let hash = token_hash(&token);
            match state.store().session(&hash, state.now()).await {
                Ok(Some(s)) => {
                    return Ok(Staff {
                        username: s.username,
                        display_name: s.display_name,
                        csrf: s.csrf,
                        token_hash: hash,
                    })
                }
                Ok(None) => {}
                Err(e) => return Err(internal(e)),
            }
        }
        Err(Redirect::to("/logga-in").into_response())
    }
}

/// The client's address, when the server knows it (not in `oneshot` tests).
struct ClientAddr(Option<std::net::IpAddr>);

impl FromRequestParts<WebState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn csrf_ok(staff: &Staff, token: &str) -> bool {
    !token.is_empty() && constant_time_eq(&staff.csrf, token)
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "web page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Tekniskt fel",
        "Sidan kunde inte visas på grund av ett tekniskt fel. Försök igen om en stund.",
    )
}

fn render(name: &str, ctx: Value) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "Tekniskt fel").into_response()
        }
    }
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut r = render(
        "error.html.j2",
        context! { title => title, message => message },
    );
    *r.status_mut() = status;
    r
}

/// The context every staff page shares: who is logged in, the navigation counts, the token.
async fn base(state: &WebState, staff: &Staff, active: &str) -> Result<Value, Response> {
    let counts = state.store().queue_counts().await.map_err(internal)?;
    Ok(context! {
        user => staff.display_name,
        csrf => staff.csrf,
        counts => counts,
        active => active,
    })
}

// ---------------------------------------------------------------------------------------------
// Login

async fn home(staff: Result<Staff, Response>) -> Redirect {
    match staff {
        Ok(_) => Redirect::to("/avvisade"),
        Err(_) => Redirect::to("/logga-in"),
    }
}

fn login_form(
    state: &WebState,
    status: StatusCode,
    error: Option<&str>,
    username: Option<&str>,
) -> Response {
    // A login form has no session yet: its token is a cookie of its own (double submit).
    let token = random_token();
    let mut r = render(
        "login.html.j2",
        context! { title => "Logga in", login_csrf => token, error => error, username => username },
    );
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, 3600),
    );
    r
}

async fn login_page(State(state): State<WebState>, staff: Result<Staff, Response>) -> Response {
    if staff.is_ok() {
        return Redirect::to("/avvisade").into_response();
    }
    login_form(&state, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<WebState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(&expected, &form.csrf) {
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("Formuläret hade ingen giltig säkerhetstoken. Försök igen."),
            None,
        );
    }
    let now = state.now();
    let web = &state.inner.web;
    let window_ms = web.lockout_minutes as i64 * 60_000;
    let username = form.username.trim().to_string();
    let keys = [
        format!("u:{}", username.to_lowercase()),
        format!(
            "a:{}",
            addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
        ),
    ];
    let locked = {
        let mut limiter = state
            .inner
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| limiter.locked(k, now, web.max_failed_logins, window_ms))
            .max()
    };
    if let Some(minutes) = locked {
        tracing::warn!(
            user = %crate::intake::log_token(&username),
            "login refused: too many failed attempts"
        );
        return login_form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "För många misslyckade inloggningar. Försök igen om {minutes} minut{}.",
                if minutes == 1 { "" } else { "er" }
            )),
            Some(&username),
        );
    }
    let user = match state.store().user(&username).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| auth::DUMMY_HASH.clone());
    let password = form.password;
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(u) if verified && u.disabled == 0 => u,
        _ => {
            {
                let mut limiter = state
                    .inner
                    .limiter
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                for k in &keys {
                    limiter.fail(k, now);
                }
            }
            tracing::warn!(user = %crate::intake::log_token(&username), "failed login");
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("Fel användarnamn eller lösenord, eller så är kontot avstängt."),
                Some(&username),
            );
        }
    };
    state
        .inner
        .limiter
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear(&keys[0]);
    let token = random_token();
    let max_age_secs = web.session_hours as i64 * 3600;
    if let Err(e) = state
        .store()
        .create_session(
            &token_hash(&token),
            &user.username,
            &random_token(),
            now,
            now + max_age_secs * 1000,
        )
        .await
    {
        return internal(e);
    }
    tracing::info!(user = %user.username, "staff logged in");
    let mut r = Redirect::to("/avvisade").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, max_age_secs),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Ogiltig begäran",
        "Formuläret saknade en giltig säkerhetstoken. Gå tillbaka, läs in sidan igen och försök på nytt.",
    )
}

async fn logout(
    State(state): State<WebState>,
    staff: Staff,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    if let Err(e) = state.store().delete_session(&staff.token_hash).await {
        return internal(e);
    }
    let mut r = Redirect::to("/logga-in").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    r
}

// ---------------------------------------------------------------------------------------------
// Lists

#[derive(Deserialize, Default)]
struct RejectedQuery {
    reason: Option<String>,
    kind: Option<String>,
    unit: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn rejected(
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

async fn to_order(State(state): State<WebState>, staff: Staff) -> Response {
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

async fn to_deregister(State(state): State<WebState>, staff: Staff) -> Response {
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

async fn to_verify(State(state): State<WebState>, staff: Staff) -> Response {
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
struct SearchQuery {
    q: Option<String>,
}

async fn search(
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

async fn unprocessed(State(state): State<WebState>, staff: Staff) -> Response {
    let base = match base(&state, &staff, "ignorerat").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mails = match state.store().unprocessed_mail(LIST_LIMIT).await {
        Ok(m) => m,
        Err(e) => return internal(e),
    };
    let items: Vec<_> = mails.iter().map(views::mail_item).collect();
    render(
        "mail.html.j2",
        context! { title => "Ignorerat och karantän", mails => items, ..base },
    )
}

/// Puts a copy of the raw email back into the Maildir's `new/` under a new name, so the daemon
/// reads it again as a new delivery (the old record stays for the audit).
/// Sends a case's replies held by the rate limit after all.
async fn release_replies(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    match state
        .store()
        .release_held(&id, &staff.username, state.now())
        .await
    {
        Ok(n) => {
            tracing::info!(case = %id, user = %staff.username, replies = n, "held replies released");
            Redirect::to(&format!("/arende/{id}#replies")).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn reprocess(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let mail = match state.store().mail(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found().await,
        Err(e) => return internal(e),
    };
    if mail.outcome == "processed" || mail.reprocessed_at.is_some() || mail.purged_at.is_some() {
        return error_page(
            StatusCode::CONFLICT,
            "Kan inte behandlas igen",
            "Meddelandet är redan behandlat, skickat för ny behandling eller gallrat.",
        );
    }
    let Some(name) = mail.source_ref.strip_prefix("maildir:") else {
        return error_page(
            StatusCode::CONFLICT,
            "Kan inte behandlas igen",
            "Meddelandet kom inte från brevlådan som tjänsten bevakar, så originalet finns inte här.",
        );
    };
    let now = state.now();
    let root = state.inner.maildir.clone();
    let name = name.to_string();
    let copied =
        tokio::task::spawn_blocking(move || crate::source::Maildir::new(&root).requeue(&name, now))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match copied {
        Ok(()) => {
            if let Err(e) = state.store().mark_reprocessed(&id, now).await {
                return internal(e);
            }
            tracing::info!(message = %id, user = %staff.username, "email queued for processing again");
            Redirect::to("/ignorerat").into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, message = %id, "cannot requeue an email");
            error_page(
                StatusCode::CONFLICT,
                "Kan inte behandlas igen",
                "Originalet finns inte längre i brevlådan.",
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The case page and its actions

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    comment: Option<String>,
    card_number: Option<String>,
}

async fn case_page(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = q
        .get("klart")
        .and_then(|a| Action::parse(a))
        .map(|a| format!("Klart: ”{}”.", a.label_sv()))
        .or_else(|| {
            let decided = match q.get("granskat")?.as_str() {
                "queued" => "godkändes och är nu att handlägga",
                "rejected" => "avvisades",
                _ => return None,
            };
            let reply = if q.get("svar").is_some_and(|s| s == "1") {
                "Svaret till avsändaren är skickat till utkorgen."
            } else {
                "Inget svar kunde skickas: avsändaren saknar adress."
            };
            Some(format!("Granskat: ärendet {decided}. {reply}"))
        })
        .or_else(|| {
            q.get("rattat").map(|n| {
                format!(
                    "{n} fält rättade. Inget nytt svar skickades; häv avvisningen om den var fel."
                )
            })
        });
    show_case(&state, &staff, &id, StatusCode::OK, notice, None).await
}

async fn show_case(
    state: &WebState,
    staff: &Staff,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let detail = match state.store().case_detail(id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Ärendet finns inte",
                &format!("Det finns inget ärende {id}."),
            )
        }
        Err(e) => return internal(e),
    };
    let base = match base(state, staff, "").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let view = match views::case_view(state.store(), &detail).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let originals = state.inner.originals.clone();
    let case = detail.case.clone();
    let max_bytes = state.inner.max_message_bytes;
    let form_pages = tokio::task::spawn_blocking(move || {
        form_image::pages_to_show(&case, &originals, max_bytes)
            .map_err(form_image::Unavailable::note_sv)
    })
    .await
    .unwrap_or(Err(form_image::Unavailable::Failed.note_sv()));
    let mut r = render(
        "case.html.j2",
        minijinja::value::merge_maps([
            context! {
                title => format!("Ärende {}", detail.case.id),
                notice => notice,
                error => error,
                form_pages => form_pages.as_ref().ok(),
                form_note => form_pages.as_ref().err(),
            },
            view,
            base,
        ]),
    );
    *r.status_mut() = status;
    r
}

/// One page of the case's form as PNG (`/arende/{id}/sida/{n}.png`). Personal data: never
/// cached, and only the pages the case's form was read from.
async fn form_page_image(
    State(state): State<WebState>,
    _staff: Staff,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Some(page) = file
        .strip_suffix(".png")
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return not_found().await;
    };
    let case = match state.store().case_detail(&id).await {
        Ok(Some(d)) => d.case,
        Ok(None) => return not_found().await,
        Err(e) => return internal(e),
    };
    rendered(&state, move |originals, max_bytes| {
        form_image::render(&case, originals, page, max_bytes)
    })
    .await
}

/// The crop of the scanned page where one field was read (`/arende/{id}/falt/{field}.png`),
/// for staff verifying the reading. Only fields the case has a box for.
async fn field_crop_image(
    State(state): State<WebState>,
    _staff: Staff,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Some(field) = file.strip_suffix(".png") else {
        return not_found().await;
    };
    let case = match state.store().case_detail(&id).await {
        Ok(Some(d)) => d.case,
        Ok(None) => return not_found().await,
        Err(e) => return internal(e),
    };
    let boxes: Vec<crate::forms::FieldBox> =
        serde_json::from_str(&case.field_boxes).unwrap_or_default();
    let Some(fbox) = form_image::field_box(&boxes, field) else {
        return not_found().await;
    };
    rendered(&state, move |originals, max_bytes| {
        form_image::render_crop(&case, originals, &fbox, max_bytes)
    })
    .await
}

/// Runs `render` (a page or a crop of the case's form) on a blocking thread, no more renders at
/// once than the semaphore allows, and answers with the PNG or a page saying why there is none.
async fn rendered(
    state: &WebState,
    render: impl FnOnce(
            &crate::originals::Originals,
            usize,
        ) -> Result<Option<Vec<u8>>, form_image::Unavailable>
        + Send
        + 'static,
) -> Response {
    let Ok(_permit) = state.inner.renders.acquire().await else {
        return internal("the render semaphore is closed");
    };
    let originals = state.inner.originals.clone();
    let max_bytes = state.inner.max_message_bytes;
    let png = tokio::task::spawn_blocking(move || render(&originals, max_bytes))
        .await
        .unwrap_or(Err(form_image::Unavailable::Failed));
    match png {
        Ok(Some(png)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
            ],
            png,
        )
            .into_response(),
        Ok(None) => not_found().await,
        Err(why) => {
            let status = match why {
                form_image::Unavailable::Failed => StatusCode::INTERNAL_SERVER_ERROR,
                form_image::Unavailable::Purged => StatusCode::GONE,
                _ => StatusCode::NOT_FOUND,
            };
            error_page(status, "Blanketten kan inte visas", why.note_sv())
        }
    }
}

/// The corrections of a verification form: `f.<key>=<value>` for every field shown, besides
/// the token. Only values that differ from the stored ones become corrections (verification
/// compares).
fn corrections_of(form: &[(String, String)]) -> Vec<(String, String)> {
    form.iter()
        .filter_map(|(k, v)| k.strip_prefix("f.").map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// "Bekräfta" on a held case: saves the corrections, checks again, decides and replies.
async fn verify_case(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    run_verification(state, staff, id, form, true).await
}

/// "Rätta fält" on a rejected case: corrections only, no reply.
async fn correct_case(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    run_verification(state, staff, id, form, false).await
}

async fn run_verification(
    state: WebState,
    staff: Staff,
    id: String,
    form: Vec<(String, String)>,
    confirm: bool,
) -> Response {
    let token = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !csrf_ok(&staff, token) {
        return csrf_refused();
    }
    let engine = match state.engine().await {
        Ok(e) => e,
        Err(e) => return internal(format!("{e:#}")),
    };
    let request = crate::casework::verification::VerifyRequest {
        case_id: id.clone(),
        actor: staff.username.clone(),
        corrections: corrections_of(&form),
        confirm,
    };
    use crate::casework::verification::VerifyError as E;
    match crate::casework::verification::verify(state.store(), &engine, state.now(), request).await
    {
        Ok(done) if confirm => Redirect::to(&format!(
            "/arende/{id}?granskat={}&svar={}",
            done.state,
            u8::from(done.reply.is_some())
        ))
        .into_response(),
        Ok(done) => {
            Redirect::to(&format!("/arende/{id}?rattat={}", done.corrected.len())).into_response()
        }
        Err(E::NotFound(_)) => not_found().await,
        Err(e) => {
            let status = match &e {
                E::Purged | E::NotAllowed(_) | E::AlreadyAnswered | E::Conflict(_) | E::NoForm => {
                    StatusCode::CONFLICT
                }
                E::UnknownField { .. } | E::Nothing => StatusCode::UNPROCESSABLE_ENTITY,
                E::Directory(_) => StatusCode::SERVICE_UNAVAILABLE,
                E::NotFound(_) | E::Reply(_) | E::Store(_) | E::Corrupt(_) => {
                    tracing::error!(error = %e, case = %id, "verification failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            show_case(&state, &staff, &id, status, None, Some(e.to_string())).await
        }
    }
}

async fn case_action(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !csrf_ok(&staff, &form.csrf) {
        return csrf_refused();
    }
    let Some(action) = Action::parse(&form.action) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Okänd åtgärd",
            "Åtgärden finns inte.",
        );
    };
    let intake = &state.inner.intake;
    let reply = ReplySettings {
        own_address: &intake.own_address,
        display_name: &intake.display_name,
        office_address: &intake.office_address,
    };
    let request = Request {
        case_id: id.clone(),
        action,
        actor: staff.username.clone(),
        comment: form.comment,
        card_number: form.card_number,
    };
    match crate::casework::lifecycle::apply(state.store(), &reply, state.now(), request).await {
        Ok(_) => Redirect::to(&format!("/arende/{id}?klart={}", action.as_str())).into_response(),
        Err(LifecycleError::NotFound(_)) => not_found().await,
        Err(e) => {
            let status = match &e {
                LifecycleError::NotAllowed { .. }
                | LifecycleError::Conflict(_)
                | LifecycleError::Purged => StatusCode::CONFLICT,
                LifecycleError::CommentRequired
                | LifecycleError::CardNumberRequired
                | LifecycleError::InvalidCardNumber => StatusCode::UNPROCESSABLE_ENTITY,
                LifecycleError::NotFound(_)
                | LifecycleError::Notice(_)
                | LifecycleError::Store(_) => {
                    tracing::error!(error = %e, case = %id, "case transition failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            show_case(&state, &staff, &id, status, None, Some(e.message_sv())).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public pages

async fn forms_page() -> Response {
    let mut r = render(
        "forms.html.j2",
        context! { title => "Blanketter för eTjänstekort" },
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn form_pdf(Path(file): Path<String>) -> Response {
    use crate::forms::spec::FormKind;
    let Some(kind) = FormKind::ALL
        .into_iter()
        .find(|k| file == format!("{}.pdf", k.form_id()))
    else {
        return not_found().await;
    };
    let pdf = tokio::task::spawn_blocking(move || crate::forms::pdf_writer::blank_form(kind))
        .await
        .unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        pdf,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLE,
    )
        .into_response()
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Sidan finns inte",
        "Sidan du söker finns inte.",
    )
}
