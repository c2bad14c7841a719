//! The form as it was sent, as images: a page of the case's form, and the crop where one field
//! was read. Rendered off the async workers, a few at a time.

use axum::extract::{Path, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::render::{error_page, internal, not_found};
use super::session::Staff;
use super::{form_image, WebState};

/// One page of the case's form as PNG (`/arende/{id}/sida/{n}.png`). Personal data: never
/// cached, and only the pages the case's form was read from.
pub(super) async fn form_page_image(
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
    rendered(&state, move |originals, max_bytes, limits| {
        form_image::render(&case, originals, page, max_bytes, limits)
    })
    .await
}

/// The crop of the scanned page where one field was read (`/arende/{id}/falt/{field}.png`),
/// for staff verifying the reading. Only fields the case has a box for.
pub(super) async fn field_crop_image(
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
    rendered(&state, move |originals, max_bytes, limits| {
        form_image::render_crop(&case, originals, &fbox, max_bytes, limits)
    })
    .await
}

/// Runs `render` (a page or a crop of the case's form) on a blocking thread, no more renders at
/// once than the semaphore allows, and answers with the PNG or a page saying why there is none.
pub(super) async fn rendered(
    state: &WebState,
    render: impl FnOnce(
            &crate::originals::Originals,
            usize,
            &crate::ocr::RasterLimits,
        ) -> Result<Option<Vec<u8>>, form_image::Unavailable>
        + Send
        + 'static,
) -> Response {
    let Ok(_permit) = state.inner.renders.acquire().await else {
        return internal("the render semaphore is closed");
    };
    let originals = state.inner.originals.clone();
    let max_bytes = state.inner.max_message_bytes;
    let limits = state.inner.parts.ocr.raster.clone();
    let png = tokio::task::spawn_blocking(move || render(&originals, max_bytes, &limits))
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
