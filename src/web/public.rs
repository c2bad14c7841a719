//! The pages that need no login: the blank forms for providers, and the style sheet.

use axum::extract::Path;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::render::{not_found, render};

const STYLE: &str = include_str!("style.css");

pub(super) async fn forms_page() -> Response {
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

pub(super) async fn form_pdf(Path(file): Path<String>) -> Response {
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

pub(super) async fn style() -> Response {
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
