//! Rendering: the page templates (HTML auto-escaped), the error pages and the context every
//! staff page shares.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, AutoEscape, Environment, Value};

use super::session::Staff;
use super::WebState;

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
            "_paging.html.j2",
            include_str!("../../templates/web/_paging.html.j2"),
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
            "mail_one.html.j2",
            include_str!("../../templates/web/mail_one.html.j2"),
        ),
        (
            "overview.html.j2",
            include_str!("../../templates/web/overview.html.j2"),
        ),
        (
            "held_replies.html.j2",
            include_str!("../../templates/web/held_replies.html.j2"),
        ),
        (
            "providers.html.j2",
            include_str!("../../templates/web/providers.html.j2"),
        ),
        (
            "provider.html.j2",
            include_str!("../../templates/web/provider.html.j2"),
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

pub(super) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "web page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Tekniskt fel",
        "Sidan kunde inte visas på grund av ett tekniskt fel. Försök igen om en stund.",
    )
}

pub(super) fn render(name: &str, ctx: Value) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "Tekniskt fel").into_response()
        }
    }
}

pub(super) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut r = render(
        "error.html.j2",
        context! { title => title, message => message },
    );
    *r.status_mut() = status;
    r
}

/// The context every staff page shares: who is logged in, the navigation counts, the token.
pub(super) async fn base(state: &WebState, staff: &Staff, active: &str) -> Result<Value, Response> {
    let counts = state.store().queue_counts().await.map_err(internal)?;
    Ok(context! {
        user => staff.display_name,
        csrf => staff.csrf,
        counts => counts,
        active => active,
    })
}

pub(super) fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Ogiltig begäran",
        "Formuläret saknade en giltig säkerhetstoken. Gå tillbaka, läs in sidan igen och försök på nytt.",
    )
}

pub(super) async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Sidan finns inte",
        "Sidan du söker finns inte.",
    )
}
