//! Sessions and CSRF: the logged-in staff member as an extractor, the cookies, the client's
//! address and the token every form carries.

use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{constant_time_eq, token_hash};
use super::render::internal;
use super::WebState;

pub(super) const SESSION_COOKIE: &str = "tjid_session";
pub(super) const LOGIN_COOKIE: &str = "tjid_login";

/// A logged-in staff member. Extracting it from a request without a live session redirects
/// to the login page.
pub struct Staff {
    pub username: String,
    pub display_name: String,
    pub csrf: String,
    pub(super) token_hash: String,
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(super) fn set_cookie(
    state: &WebState,
    name: &str,
    value: &str,
    max_age_secs: i64,
) -> HeaderValue {
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
        // A page asked for without a login is where the login leads (a deep link from a
        // notice or a colleague); a form sent without one cannot be replayed.
        let target = match parts.uri.path_and_query() {
            Some(pq) if parts.method == axum::http::Method::GET && pq.as_str() != "/" => {
                format!("/logga-in?till={}", encode_component(pq.as_str()))
            }
            _ => "/logga-in".to_string(),
        };
        Err(Redirect::to(&target).into_response())
    }
}

/// The client's address, when the server knows it (not in `oneshot` tests).
pub(super) struct ClientAddr(pub(super) Option<std::net::IpAddr>);

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

pub(super) fn csrf_ok(staff: &Staff, token: &str) -> bool {
    !token.is_empty() && constant_time_eq(&staff.csrf, token)
}

/// A posted form whose fields may repeat (`svar=…&svar=…`: the ticked rows of a batch action).
pub(super) struct BatchForm(pub(super) Vec<(String, String)>);

impl BatchForm {
    /// The first value of `key`, trimmed, when it is not empty.
    pub(super) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `key`, trimmed.
    pub(super) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// Whether its token is this member of staff's.
    pub(super) fn csrf_ok(&self, staff: &Staff) -> bool {
        csrf_ok(staff, self.one("csrf").unwrap_or(""))
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// Percent-encodes `text` for a query value (letters, digits, `-._~/` stay).
fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
