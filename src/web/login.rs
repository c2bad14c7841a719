//! Logging in and out: the login form with its own double-submit token, the limit on failed
//! logins, the session cookie.

use axum::extract::{Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use super::auth::{self, constant_time_eq, random_token, token_hash};
use super::render::{csrf_refused, internal, render};
use super::session::{
    cookie, csrf_ok, set_cookie, ClientAddr, CsrfForm, Staff, LOGIN_COOKIE, SESSION_COOKIE,
};
use super::WebState;

pub(super) async fn home(staff: Result<Staff, Response>) -> Redirect {
    match staff {
        Ok(_) => Redirect::to(HOME),
        Err(_) => Redirect::to("/logga-in"),
    }
}

pub(super) fn login_form(
    state: &WebState,
    status: StatusCode,
    error: Option<&str>,
    username: Option<&str>,
    next: Option<&str>,
) -> Response {
    // A login form has no session yet: its token is a cookie of its own (double submit).
    let token = random_token();
    let mut r = render(
        "login.html.j2",
        context! {
            title => "Logga in", login_csrf => token, error => error, username => username,
            next => next.and_then(local_path),
        },
    );
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, 3600),
    );
    r
}

#[derive(Deserialize, Default)]
pub(super) struct NextQuery {
    till: Option<String>,
}

pub(super) async fn login_page(
    State(state): State<WebState>,
    staff: Result<Staff, Response>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = q.till.as_deref().and_then(local_path);
    if staff.is_ok() {
        return Redirect::to(next.unwrap_or(HOME)).into_response();
    }
    login_form(&state, StatusCode::OK, None, None, next)
}

/// Where a login goes when no page was asked for.
const HOME: &str = "/oversikt";

/// `next` when it is a path on this site (`/arende/…?x=y`), else `None`: a login never sends
/// anyone elsewhere (`//evil.example`, `/\\evil.example`, `https://…`), nor back to the login.
pub(super) fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2000
        && !next.starts_with("/logga-");
    ok.then_some(next)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    /// The page asked for before the login.
    #[serde(default)]
    till: String,
}

pub(super) async fn login(
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
            local_path(&form.till),
        );
    }
    let now = state.now();
    let web = &state.inner.web;
    let window_ms = web.lockout_minutes as i64 * 60_000;
    let username = form.username.trim().to_string();
    let next = local_path(&form.till);
    let client = super::client::client_addr(addr, &headers, &state.inner.proxies);
    // Per account and per client: one person's wrong passwords lock their account and their
    // own machine, not everyone behind the same proxy.
    let keys = [
        format!("u:{}", username.to_lowercase()),
        format!(
            "c:{}",
            client.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
        ),
    ];
    let mut locked = None;
    for key in &keys {
        match state.store().login_failures(key, now - window_ms).await {
            Ok((n, Some(oldest))) if n >= i64::from(web.max_failed_logins) => {
                let wait_ms = (oldest + window_ms - now).max(0);
                locked = locked.max(Some((wait_ms + 59_999) / 60_000));
            }
            Ok(_) => {}
            Err(e) => return internal(e),
        }
    }
    if let Some(minutes) = locked {
        tracing::warn!(
            user = %crate::pipeline::log_token(&username),
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
            next,
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
            if let Err(e) = state
                .store()
                .login_failed(&keys, now, now - window_ms)
                .await
            {
                return internal(e);
            }
            tracing::warn!(user = %crate::pipeline::log_token(&username), "failed login");
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("Fel användarnamn eller lösenord, eller så är kontot avstängt."),
                Some(&username),
                next,
            );
        }
    };
    if let Err(e) = state.store().clear_login_failures(&keys[0]).await {
        return internal(e);
    }
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
    let mut r = Redirect::to(next.unwrap_or(HOME)).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, max_age_secs),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    r
}

pub(super) async fn logout(
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
