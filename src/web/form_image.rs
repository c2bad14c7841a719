//! The form as it was sent, for the case page (issue 5): the pages a case was read from, as PNG.
//! The raw email stays where [`Originals`] keeps it (the Maildir's `cur/`, or the copy of IMAP
//! mail) until retention erases it, so each request finds it there, checks it is the same email
//! (SHA-256), takes the case's attachment and renders the one page asked for. Only the case's own pages are shown:
//! a PDF with two forms holds two people's data.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::forms::FieldBox;
use crate::ocr::raster::{self, RasterLimits};
use crate::originals::Originals;
use crate::pipeline::extract::{attachment_type, AttachmentType};
use crate::pipeline::parse::{parse_mail, Attachment};
use crate::store::CaseRow;

/// Resolution of a rendered PDF page: A4 is 827 px wide, readable on a laptop and a phone.
const PDF_DPI: u32 = 100;
/// A rendered page is cropped to this (A3 at 100 dpi): a huge page size cannot take the memory.
const MAX_RENDER: (u32, u32) = (1700, 2400);
/// A scan wider than this is scaled down (A4 at 150 dpi).
const MAX_IMAGE_WIDTH: u32 = 1240;
const MAX_PNG_BYTES: u64 = 16 << 20;
/// Pages of one case shown on its page; a form has one or two.
pub const MAX_PAGES_SHOWN: usize = 10;
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the form cannot be shown, in words staff read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Retention erased the case's personal data and the raw email.
    Purged,
    /// A deregistration notice written in the body of the email.
    Body,
    /// No form was found in the email.
    NoForm,
    /// The email came from IMAP and no copy of it is kept (`[store] originals_dir = ""`).
    NotLocal,
    /// The raw email is no longer where it was read, or is another email now.
    Missing,
    /// The attachment is there but its page could not be decoded or rendered.
    Failed,
}

impl Unavailable {
    pub fn note_sv(self) -> &'static str {
        match self {
            Unavailable::Purged => {
                "Bilagan är gallrad enligt reglerna för gallring, så blanketten kan inte visas."
            }
            Unavailable::Body => {
                "Anmälan kom i e-postmeddelandets text och inte som bilaga – det finns ingen blankett att visa."
            }
            Unavailable::NoForm => {
                "Ingen blankett hittades i meddelandet, så det finns ingen sida att visa."
            }
            Unavailable::NotLocal => {
                "Originalmeddelandet finns bara i e-postlådan (IMAP) och ingen kopia sparas hos tjänsten, så blanketten kan inte visas här."
            }
            Unavailable::Missing => {
                "Originalmeddelandet finns inte längre kvar (gallrat eller flyttat), så blanketten kan inte visas."
            }
            Unavailable::Failed => "Blankettens sida kunde inte visas som bild.",
        }
    }

    /// Why the email's text and attachments cannot be shown.
    pub fn email_note_sv(self) -> &'static str {
        match self {
            Unavailable::Purged => "Meddelandet är gallrat enligt reglerna för gallring.",
            Unavailable::NotLocal => {
                "Originalmeddelandet finns bara i e-postlådan (IMAP) och ingen kopia sparas hos tjänsten, så texten kan inte visas här."
            }
            Unavailable::Failed => "Meddelandets text kunde inte visas.",
            _ => {
                "Originalmeddelandet finns inte längre kvar (gallrat eller flyttat), så texten kan inte visas."
            }
        }
    }
}

/// The pages to show for a case, or why there are none. It reads and hashes the raw email, so
/// that the page never shows a broken image for an original that is gone or changed.
pub fn pages_to_show(
    case: &CaseRow,
    originals: &Originals,
    max_message_bytes: usize,
) -> Result<Vec<usize>, Unavailable> {
    check_case(case)?;
    read_original(case, originals, max_message_bytes)?;
    Ok(case_pages(case))
}

/// Whether the case has an attachment that retention has not erased.
fn check_case(case: &CaseRow) -> Result<(), Unavailable> {
    if case.purged_at.is_some() || case.message_purged_at.is_some() {
        return Err(Unavailable::Purged);
    }
    if case.attachment_index.is_none() && case.attachment.is_none() {
        return Err(if case.kind == "unknown" {
            Unavailable::NoForm
        } else {
            Unavailable::Body
        });
    }
    Ok(())
}

fn case_pages(case: &CaseRow) -> Vec<usize> {
    let mut pages: Vec<usize> = serde_json::from_str(&case.pages).unwrap_or_default();
    if pages.is_empty() {
        pages.push(1);
    }
    pages.truncate(MAX_PAGES_SHOWN);
    pages
}

/// Page `page` of the case's form as PNG; `Ok(None)` when the form has no such page. Blocking:
/// run it off the async workers.
pub fn render(
    case: &CaseRow,
    originals: &Originals,
    page: usize,
    max_message_bytes: usize,
    limits: &RasterLimits,
) -> Result<Option<Vec<u8>>, Unavailable> {
    with_form_page(
        case,
        originals,
        page,
        max_message_bytes,
        |att| match attachment_type(att) {
            AttachmentType::Pdf => raster::render_page_png(
                &att.data,
                page,
                PDF_DPI,
                MAX_RENDER,
                MAX_PNG_BYTES,
                RENDER_TIMEOUT,
                limits,
            ),
            _ => png_at_most(image_page(&att.data, page, limits)?, MAX_IMAGE_WIDTH),
        },
    )
}

/// Runs `show` on the attachment the case's form came from, when `page` is one of the form's
/// pages and the original is still there and unchanged; `Ok(None)` when the form has no such
/// page. Blocking: run it off the async workers.
fn with_form_page<T>(
    case: &CaseRow,
    originals: &Originals,
    page: usize,
    max_message_bytes: usize,
    show: impl FnOnce(&Attachment) -> Result<T, raster::RasterError>,
) -> Result<Option<T>, Unavailable> {
    check_case(case)?;
    if !case_pages(case).contains(&page) {
        return Ok(None);
    }
    let raw = read_original(case, originals, max_message_bytes)?;
    let mail = parse_mail(&raw).map_err(|_| Unavailable::Missing)?;
    let att = the_attachment(case, &mail.attachments).ok_or(Unavailable::Missing)?;
    // Only a PDF or an image can be shown (the intake read the form from one of them).
    if attachment_type(att) == AttachmentType::Other {
        return Err(Unavailable::Failed);
    }
    show(att).map(Some).map_err(|e| {
        // The error names no person: a decoder's or pdftoppm's complaint.
        tracing::warn!(case = %case.id, page, error = %e, "cannot show a page of the form");
        Unavailable::Failed
    })
}

/// Resolution of a page rendered for a field's crop: twice the page view's, so that the few
/// characters staff compare are sharp.
const CROP_DPI: u32 = 200;
/// Margin around a field's box, in fractions of the page: enough to see the line above and
/// below, and the value's first and last characters whole.
const CROP_MARGIN: (f32, f32) = (0.03, 0.015);
/// A crop is scaled down to at most this width (a box across the whole page).
const MAX_CROP_WIDTH: u32 = 1400;

/// The box of `field` (several boxes of the field on one page: their union).
pub fn field_box(boxes: &[FieldBox], field: &str) -> Option<FieldBox> {
    let first = boxes.iter().find(|b| b.field == field)?;
    let mut out = first.clone();
    for b in boxes
        .iter()
        .filter(|b| b.field == field && b.page == first.page)
    {
        out.left = out.left.min(b.left);
        out.top = out.top.min(b.top);
        out.right = out.right.max(b.right);
        out.bottom = out.bottom.max(b.bottom);
    }
    Some(out)
}

/// The part of the page where one field was read, with a margin, as PNG. Blocking.
pub fn render_crop(
    case: &CaseRow,
    originals: &Originals,
    fbox: &FieldBox,
    max_message_bytes: usize,
    limits: &RasterLimits,
) -> Result<Option<Vec<u8>>, Unavailable> {
    with_form_page(case, originals, fbox.page, max_message_bytes, |att| {
        let page = match attachment_type(att) {
            AttachmentType::Pdf => raster::render_page_png(
                &att.data,
                fbox.page,
                CROP_DPI,
                (MAX_RENDER.0 * 2, MAX_RENDER.1 * 2),
                MAX_PNG_BYTES * 2,
                RENDER_TIMEOUT,
                limits,
            )
            .and_then(|png| {
                image::load_from_memory(&png)
                    .map(|i| i.to_luma8())
                    .map_err(|e| raster::RasterError::Decode(e.to_string()))
            })?,
            _ => image_page(&att.data, fbox.page, limits)?,
        };
        png_at_most(crop(&page, fbox), MAX_CROP_WIDTH)
    })
}

/// `img` cropped to `fbox` with the margin.
fn crop(img: &image::GrayImage, fbox: &FieldBox) -> image::GrayImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let clamp = |v: f32| v.clamp(0.0, 1.0);
    let x0 = (clamp(fbox.left.min(fbox.right) - CROP_MARGIN.0) * w).floor() as u32;
    let y0 = (clamp(fbox.top.min(fbox.bottom) - CROP_MARGIN.1) * h).floor() as u32;
    let x1 = (clamp(fbox.right.max(fbox.left) + CROP_MARGIN.0) * w).ceil() as u32;
    let y1 = (clamp(fbox.bottom.max(fbox.top) + CROP_MARGIN.1) * h).ceil() as u32;
    let (cw, ch) = (
        x1.saturating_sub(x0).clamp(1, img.width().max(1)),
        y1.saturating_sub(y0).clamp(1, img.height().max(1)),
    );
    image::imageops::crop_imm(img, x0, y0, cw, ch).to_image()
}

/// Page `page` of a scan (JPEG, PNG, TIFF with one page per directory), at its own resolution.
fn image_page(
    data: &[u8],
    page: usize,
    limits: &RasterLimits,
) -> Result<image::GrayImage, raster::RasterError> {
    let mut pages = raster::decode_image(data, limits)?;
    if page == 0 || page > pages.len() {
        return Err(raster::RasterError::Decode(format!("no page {page}")));
    }
    Ok(pages.swap_remove(page - 1).image)
}

/// `img` as PNG, scaled down to `max_width` when it is wider.
fn png_at_most(mut img: image::GrayImage, max_width: u32) -> Result<Vec<u8>, raster::RasterError> {
    if img.width() > max_width {
        let height = (img.height() as u64 * max_width as u64 / img.width() as u64).max(1);
        img = image::imageops::resize(
            &img,
            max_width,
            height as u32,
            image::imageops::FilterType::Triangle,
        );
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| raster::RasterError::Decode(e.to_string()))?;
    Ok(out.into_inner())
}

/// Where the raw email is kept: the Maildir or the copy of IMAP mail for the daemon, the file
/// for `process`.
fn original_path(source_ref: &str, originals: &Originals) -> Result<PathBuf, Unavailable> {
    originals
        .path(source_ref)
        .ok_or(if originals.keeps(source_ref) {
            Unavailable::Missing
        } else {
            Unavailable::NotLocal
        })
}

/// Reads the raw email, no more than the intake would have read, and only if it is the email
/// the case came from (a file can be replaced, a Maildir name reused).
pub(super) fn read_original(
    case: &CaseRow,
    originals: &Originals,
    max_bytes: usize,
) -> Result<Vec<u8>, Unavailable> {
    read_raw(&case.source_ref, &case.content_hash, originals, max_bytes)
}

/// The raw email of `source_ref` where [`Originals`] keeps it, when it is the one recorded
/// (its SHA-256 is `content_hash`) and not larger than `max_bytes`.
pub(super) fn read_raw(
    source_ref: &str,
    content_hash: &str,
    originals: &Originals,
    max_bytes: usize,
) -> Result<Vec<u8>, Unavailable> {
    use sha2::{Digest, Sha256};
    let path = original_path(source_ref, originals)?;
    let file = std::fs::File::open(path).map_err(|_| Unavailable::Missing)?;
    let mut raw = Vec::new();
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|_| Unavailable::Missing)?;
    if raw.len() > max_bytes || hex::encode(Sha256::digest(&raw)) != content_hash {
        return Err(Unavailable::Missing);
    }
    Ok(raw)
}

/// The case's attachment: by its recorded place, checked against its name; older cases, which
/// have only the name, take the first attachment of that name.
fn the_attachment<'a>(case: &CaseRow, attachments: &'a [Attachment]) -> Option<&'a Attachment> {
    match case.attachment_index {
        Some(i) => attachments
            .get(usize::try_from(i).ok()?)
            .filter(|a| case.attachment.is_none() || a.name == case.attachment),
        None => attachments.iter().find(|a| a.name == case.attachment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_scan_is_scaled_down_to_a_png() {
        let img = image::GrayImage::from_pixel(2480, 100, image::Luma([200]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let out = png_at_most(
            image_page(png.get_ref(), 1, &RasterLimits::default()).unwrap(),
            MAX_IMAGE_WIDTH,
        )
        .unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (1240, 50));
        assert!(image_page(png.get_ref(), 2, &RasterLimits::default()).is_err());
    }

    #[test]
    fn an_original_is_looked_for_where_its_source_keeps_it() {
        let none = Originals::at("/nonexistent".into(), None);
        assert_eq!(original_path("imap:1:2", &none), Err(Unavailable::NotLocal));
        let kept = Originals::at("/nonexistent".into(), Some("/nonexistent/o".into()));
        assert_eq!(original_path("imap:1:2", &kept), Err(Unavailable::Missing));
        assert_eq!(original_path("maildir:x", &none), Err(Unavailable::Missing));
        assert_eq!(
            original_path("file:/nonexistent/a.eml#abc", &none),
            Err(Unavailable::Missing)
        );
    }

    #[test]
    fn the_maildir_copy_is_found_with_or_without_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        let md = crate::source::Maildir::create(dir.path()).unwrap();
        let originals = Originals::at(dir.path().to_path_buf(), None);
        let in_cur = dir.path().join("cur/1700000000.abc.host:2,S");
        std::fs::write(&in_cur, b"x").unwrap();
        assert_eq!(
            original_path("maildir:1700000000.abc.host", &originals),
            Ok(in_cur)
        );
        assert_eq!(
            original_path("maildir:1700000000.abc", &originals),
            Err(Unavailable::Missing)
        );
        let in_new = dir.path().join("new/1700000001.def.host");
        std::fs::write(&in_new, b"x").unwrap();
        assert_eq!(md.find("new", "1700000001.def.host"), Some(in_new));
    }
}
