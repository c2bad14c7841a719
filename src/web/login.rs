//! Logging in and out: the login form with its own double-submit token, the limit on failed
//! logins, the session cookie.

use axum::extract::State;
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
        Ok(_) => Redirect::to("/avvisade"),
        Err(_) => Redirect::to("/logga-in"),
    }
}

pub(super) fn login_form(
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

pub(super) async fn login_page(
    State(state): State<WebState>,
    staff: Result<Staff, Response>,
) -> Response {
    if staff.is_ok() {
        return Redirect::to("/avvisade").into_response();
    }
    login_form(&state, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
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
