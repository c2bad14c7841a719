//! Stage 2: find forms wherever SPEC §2.1 puts them — AcroForm fields, a PDF text layer, the
//! body of the email (deregistration notices) — and read their raw values.

use crate::forms::labels::{fold, title_kind, LabelSet, LabelTarget};
use crate::forms::layout::{read_forms, PageWords, RawForm, Word};
use crate::forms::signature::{read_signature, SignatureReading, SignatureState};
use crate::forms::spec::{FieldType, FormKind, FORM_ID_FIELD, NO, YES};
use crate::ocr::{self, OcrPage, OcrSettings};
use crate::pdf::{read_pdf, AcroField, FieldKind, PdfDocument, PdfLimits};
use crate::pipeline::parse::Attachment;

/// What one attachment gave.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentRead {
    Forms(Vec<RawForm>),
    /// Readable, but holds no form (a cover letter, an invoice, a file type we do not read).
    NoForm,
    /// A scan (a photo, a fax) read by OCR in which no form was found: a rejection that rests
    /// on a reading of a scan, so it is held for staff (SPEC §4.4).
    ScanNoForm,
    /// A PDF or image that could not be read at all; the text says why (no personal data).
    Unreadable(String),
    /// A scan, and Tesseract is not installed here: our fault, not the sender's, so the email
    /// must not be answered as unreadable.
    OcrUnavailable,
    /// Its reading was stopped for time (its processor time spent, or the programs starved of
    /// a core); the text says why. Unreadable, unless it fails the same way when read again
    /// with nothing else in flight (`intake`): a busy machine must not decide (issue 20).
    OutOfTime(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttachmentType {
    Pdf,
    Image,
    Other,
}

pub(crate) fn attachment_type(att: &Attachment) -> AttachmentType {
    let name = att.name.as_deref().unwrap_or("").to_ascii_lowercase();
    let head = &att.data[..att.data.len().min(1024)];
    if att.content_type == "application/pdf"
        || name.ends_with(".pdf")
        || find(head, b"%PDF-").is_some()
    {
        return AttachmentType::Pdf;
    }
    let image_ext = [
        ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp",
    ];
    if att.content_type.starts_with("image/")
        || image_ext.iter().any(|e| name.ends_with(e))
        || head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(b"\x89PNG")
        || head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
    {
        return AttachmentType::Image;
    }
    AttachmentType::Other
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub struct ExtractLimits {
    pub max_attachment_bytes: usize,
    /// Attachments after this many are not read (a mail bomb of attachments).
    pub max_attachments: usize,
    pub pdf: PdfLimits,
    /// Text recognition of scans (pages per attachment, pixels, time per page).
    pub ocr: OcrSettings,
}

/// Reads one attachment. The external programs it runs (pdftoppm, tesseract) get one page time
/// limit (`[ocr] page_timeout_secs`) together, so no attachment costs more than that in them
/// whatever it holds; the time spent waiting for a free OCR worker does not count.
///
/// With workers enabled (`run`, `process`), a PDF or image is read in a worker process
/// (`pipeline::worker`), under its memory and processor-time limits.
pub fn read_attachment(att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
    if attachment_type(att) != AttachmentType::Other
        && att.data.len() <= limits.max_attachment_bytes
    {
        if let Some(read) = super::worker::read_elsewhere(att, limits) {
            return read;
        }
    }
    read_attachment_here(att, limits)
}

/// Reads one attachment in this process (see [`read_attachment`]).
pub(crate) fn read_attachment_here(att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
    let budget = ocr::child::Budget::new(limits.ocr.page_timeout);
    ocr::child::with_budget(Some(budget), || read_attachment_now(att, limits))
}

fn read_attachment_now(att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
    let kind = attachment_type(att);
    if kind == AttachmentType::Other {
        return AttachmentRead::NoForm;
    }
    if att.data.len() > limits.max_attachment_bytes {
        return AttachmentRead::Unreadable(format!(
            "larger than {} bytes",
            limits.max_attachment_bytes
        ));
    }
    match kind {
        AttachmentType::Image => read_image(&att.data, &limits.ocr),
        AttachmentType::Pdf => match read_pdf(&att.data, &limits.pdf) {
            Err(e) => AttachmentRead::Unreadable(e.to_string()),
            Ok(doc) => read_pdf_document(&doc, &att.data, limits),
        },
        AttachmentType::Other => AttachmentRead::NoForm,
    }
}

/// Below this many pixels on its shorter side an image cannot hold a form page (SPEC §2.1): a
/// signature logo or an icon. Even a fax in standard mode (A4, 204×98 dpi) is 1 145 px high.
pub const DECORATIVE_MAX_SIDE: u32 = 600;

/// A scan sent as an image: every page (a TIFF may hold several) goes through OCR. A decorative
/// image (a logo) is not read at all: it makes no case and costs no recognition.
fn read_image(data: &[u8], settings: &OcrSettings) -> AttachmentRead {
    // The header alone tells a logo, a broken file and an image too large to decode.
    match ocr::raster::image_dimensions(data) {
        None => return AttachmentRead::Unreadable("the image cannot be decoded".into()),
        Some((w, h)) if w.min(h) < DECORATIVE_MAX_SIDE => {
            tracing::debug!(width = w, height = h, "decorative image skipped");
            return AttachmentRead::NoForm;
        }
        Some((w, h)) if w as u64 * h as u64 > settings.raster.max_pixels => {
            let too_large = ocr::raster::RasterError::TooLarge(w as u64 * h as u64);
            return AttachmentRead::Unreadable(too_large.to_string());
        }
        Some(_) => {}
    }
    let count = match ocr::raster::image_page_count(data, &settings.raster) {
        Ok(count) => count,
        Err(e) => return AttachmentRead::Unreadable(e.to_string()),
    };
    let numbers: Vec<usize> = (1..=count).collect();
    let decode = |i| ocr::raster::decode_image_page(data, i, &settings.raster);
    match ocr::recognise_lazily(&numbers, settings, decode) {
        Err(e) => ocr_failure(e),
        Ok(pages) => read_ocr_pages(Vec::new(), pages),
    }
}

/// Forms on pages read from a text layer (`text_pages`) and by OCR (`ocr_pages`), in page order.
fn read_ocr_pages(text_pages: Vec<PageWords>, ocr_pages: Vec<OcrPage>) -> AttachmentRead {
    let ocr_numbers: Vec<usize> = ocr_pages.iter().map(|p| p.words.number).collect();
    let all_blank = ocr_pages.iter().all(|p| p.blank);
    let recognisable = ocr_pages
        .iter()
        .any(|p| has_recognisable_text(&p.words.words));
    let mut pages: Vec<PageWords> = text_pages;
    pages.extend(ocr_pages.into_iter().map(|p| p.words));
    pages.sort_by_key(|p| p.number);
    let mut forms = read_forms(&pages);
    for form in &mut forms {
        form.ocr_pages = form
            .pages
            .iter()
            .copied()
            .filter(|n| ocr_numbers.contains(n))
            .collect();
    }
    if !forms.is_empty() {
        return AttachmentRead::Forms(forms);
    }
    let text_layer = pages
        .iter()
        .any(|p| !ocr_numbers.contains(&p.number) && has_recognisable_text(&p.words));
    if all_blank || recognisable || text_layer {
        // A blank sheet or a letter: readable, and no form on it (as far as OCR could tell).
        match ocr_numbers.is_empty() {
            true => AttachmentRead::NoForm,
            false => AttachmentRead::ScanNoForm,
        }
    } else {
        AttachmentRead::Unreadable("a scan with no recognisable text".into())
    }
}

/// Some real words read with confidence: a readable page (a letter, an invoice), not noise.
fn has_recognisable_text(words: &[Word]) -> bool {
    words
        .iter()
        .filter(|w| {
            w.confidence >= 70.0 && w.text.chars().filter(|c| c.is_alphabetic()).count() >= 3
        })
        .count()
        >= 5
}

/// Whether a PDF page needs OCR: it shows an image and its text layer is (next to) empty. A page
/// whose text layer holds words is read as text, even when the words hold no form, so OCR never
/// runs on a page that does not need it.
fn needs_ocr(page: &crate::pdf::Page) -> bool {
    let words = page
        .words
        .iter()
        .filter(|w| w.text.chars().filter(|c| c.is_alphanumeric()).count() >= 2)
        .count();
    page.image_count > 0 && words < 3
}

fn read_pdf_document(doc: &PdfDocument, bytes: &[u8], limits: &ExtractLimits) -> AttachmentRead {
    let settings = &limits.ocr;
    if let Some(form) = acroform(doc) {
        return AttachmentRead::Forms(vec![form]);
    }
    let mut text_pages = Vec::new();
    let mut scanned = Vec::new();
    for p in &doc.pages {
        if needs_ocr(p) {
            scanned.push(p.number);
            continue;
        }
        text_pages.push(text_page(p));
    }
    if scanned.is_empty() {
        let forms = read_forms_with_ink(&mut text_pages, bytes, limits);
        return if forms.is_empty() {
            AttachmentRead::NoForm
        } else {
            AttachmentRead::Forms(forms)
        };
    }
    if scanned.len() > settings.raster.max_pages {
        tracing::warn!(
            pages = scanned.len(),
            max = settings.raster.max_pages,
            "scanned PDF: only the first pages are read"
        );
        scanned.truncate(settings.raster.max_pages);
    }
    let pdf = match ocr::raster::PdfPages::load(bytes, &limits.pdf) {
        Ok(pdf) => pdf,
        Err(e) => return forms_or(&text_pages, AttachmentRead::Unreadable(e.to_string())),
    };
    let page = |i: usize| pdf.page(scanned[i], &settings.raster);
    match ocr::recognise_lazily(&scanned, settings, page) {
        Ok(pages) => read_ocr_pages(text_pages, pages),
        Err(e) => forms_or(&text_pages, ocr_failure(e)),
    }
}

/// A PDF page's text layer and painted shapes, as the layout reader takes them.
fn text_page(p: &crate::pdf::Page) -> PageWords {
    PageWords {
        number: p.number,
        width: p.width,
        height: p.height,
        ink: None,
        graphics: p.graphics.clone(),
        words: p
            .words
            .iter()
            .map(|w| Word {
                text: w.text.clone(),
                x0: w.x0,
                y0: w.y0,
                x1: w.x1,
                y1: w.y1,
                confidence: 100.0,
            })
            .collect(),
    }
}

/// Reads the forms of text pages; where a choice's mark is drawn rather than written, renders
/// the form's pages (150 dpi, ~0.1 s a page) and reads them again with the ink at hand. A page
/// that cannot be rendered keeps its reading from the text, marked uncertain.
fn read_forms_with_ink(
    pages: &mut [PageWords],
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Vec<RawForm> {
    let mut forms = read_forms(pages);
    let wanted: Vec<usize> = forms
        .iter()
        .filter(|f| f.needs_ink)
        .flat_map(|f| f.pages.iter().copied())
        .collect();
    if wanted.is_empty() {
        return forms;
    }
    const DPI: f32 = 150.0;
    match ocr::raster::PdfPages::load(bytes, &limits.pdf) {
        Ok(pdf) => {
            for page in pages.iter_mut().filter(|p| wanted.contains(&p.number)) {
                match pdf.render(page.number, DPI, &limits.ocr.raster) {
                    Ok(img) => {
                        page.ink = Some(crate::forms::ink::InkImage {
                            image: std::sync::Arc::new(img.image),
                            px_per_pt: img.dpi.unwrap_or(DPI) / 72.0,
                        })
                    }
                    Err(e) => tracing::info!(error = %e, "page not rendered for its check marks"),
                }
            }
        }
        Err(e) => tracing::info!(error = %e, "pages not rendered for their check marks"),
    }
    forms = read_forms(pages);
    for form in &mut forms {
        if form.needs_ink {
            // Still no image: the choices were read from the text alone.
            for spec in form.kind.fields() {
                if !matches!(spec.field_type, FieldType::Text)
                    && !form.low_confidence.contains(&spec.key)
                {
                    form.low_confidence.push(spec.key);
                }
            }
        }
    }
    forms
}

/// When the scanned pages cannot be read, the text pages' forms still count.
/// What a failed recognition makes of the attachment.
fn ocr_failure(e: ocr::OcrError) -> AttachmentRead {
    match e {
        ocr::OcrError::Unavailable => AttachmentRead::OcrUnavailable,
        e if e.out_of_time() => AttachmentRead::OutOfTime(e.to_string()),
        e => AttachmentRead::Unreadable(e.to_string()),
    }
}

/// The forms of the text pages, or `failed` when they hold none.
fn forms_or(text_pages: &[PageWords], failed: AttachmentRead) -> AttachmentRead {
    let forms = read_forms(text_pages);
    if forms.is_empty() {
        failed
    } else {
        AttachmentRead::Forms(forms)
    }
}

/// A filled fillable form: its fields are named as the spec tables say.
fn acroform(doc: &PdfDocument) -> Option<RawForm> {
    if doc.fields.is_empty() {
        return None;
    }
    let field = |key: &str| {
        doc.fields
            .iter()
            .find(|f| f.name == key || f.name.rsplit('.').next() == Some(key))
    };
    let kind = match field(FORM_ID_FIELD)
        .and_then(|f| f.value.as_deref())
        .map(str::trim)
    {
        Some(id) if id.eq_ignore_ascii_case(FormKind::Order.form_id()) => FormKind::Order,
        Some(id) if id.eq_ignore_ascii_case(FormKind::Deregistration.form_id()) => {
            FormKind::Deregistration
        }
        _ => {
            // No form id: decide by which table's fields are there (at least three).
            let count = |k: FormKind| k.fields().iter().filter(|f| field(f.key).is_some()).count();
            let (o, d) = (count(FormKind::Order), count(FormKind::Deregistration));
            if o.max(d) < 3 {
                return None;
            }
            if field("kortnummer").is_some() || d > o {
                FormKind::Deregistration
            } else {
                FormKind::Order
            }
        }
    };
    let mut form = RawForm::new(kind);
    for spec in kind.fields() {
        let Some(f) = field(spec.key) else { continue };
        let value = match spec.field_type {
            FieldType::YesNo => yes_no_field(f),
            _ => f.value.clone().unwrap_or_default(),
        };
        form.values.insert(spec.key, value);
    }
    let mut pages: Vec<usize> = doc.fields.iter().filter_map(|f| f.page).collect();
    pages.sort_unstable();
    pages.dedup();
    form.pages = if pages.is_empty() { vec![1] } else { pages };
    if form.kind == FormKind::Order {
        form.signature = Some(acroform_signature(doc));
    }
    Some(form)
}

/// A fillable order is signed by a filled signature field, or by what is drawn or stamped in
/// its signature box (SPEC §2.2).
fn acroform_signature(doc: &PdfDocument) -> SignatureReading {
    let signed_field = doc
        .fields
        .iter()
        .any(|f| f.kind == FieldKind::Signature && f.value.is_some());
    let pages: Vec<PageWords> = doc.pages.iter().map(text_page).collect();
    let mut reading = read_signature(&pages.iter().collect::<Vec<_>>(), &[]);
    if signed_field {
        reading.state = SignatureState::Signed;
    }
    reading
}

fn yes_no_field(f: &AcroField) -> String {
    let v = f.value.as_deref().map(str::trim).unwrap_or("");
    let on = match f.kind {
        FieldKind::Checkbox | FieldKind::Radio => {
            !v.is_empty() && !v.eq_ignore_ascii_case("off") && !v.eq_ignore_ascii_case(NO)
        }
        _ => v.to_lowercase().starts_with("ja") || v.eq_ignore_ascii_case("x"),
    };
    if on { YES } else { NO }.to_string()
}

/// What the body of an email holds.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyRead {
    Notice(RawForm),
    /// Order fields written in the body (an order must come as a signed attachment).
    Order,
    Nothing,
}

/// Labels only the order has (SPEC §2.2): three of them in a body make it an order.
const ORDER_ONLY_LABELS: &[&str] = &[
    "vardgivare_namn",
    "vardgivare_orgnr",
    "fornamn",
    "efternamn",
    "epost",
    "mobil",
    "befattning",
    "utlamning",
];

/// Reads the body: a deregistration notice as `Label: value` lines, or the signs of an order.
pub fn read_body(text: &str) -> BodyRead {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('>'))
        .collect();
    let titles: Vec<FormKind> = lines.iter().filter_map(|l| title_kind(l)).collect();

    let notice_set = LabelSet::of(FormKind::Deregistration);
    let mut notice = RawForm::new(FormKind::Deregistration);
    notice.pages = vec![];
    for line in &lines {
        let Some((label, value)) = split_label_line(line) else {
            continue;
        };
        let Some(hit) = notice_set.lookup(&fold(label)) else {
            continue;
        };
        let LabelTarget::Field(spec) = hit.target else {
            continue;
        };
        if notice.values.contains_key(spec.key) {
            continue;
        }
        let value = crate::domain::collapse_ws(value);
        let value = match spec.field_type {
            FieldType::YesNo => yes_no_text(&value).to_string(),
            _ => value,
        };
        notice.values.insert(spec.key, value);
    }
    let is_notice = titles.contains(&FormKind::Deregistration)
        || (notice.values.contains_key("kortnummer") && notice.values.len() >= 3);
    if is_notice {
        return BodyRead::Notice(notice);
    }

    let order_set = LabelSet::of(FormKind::Order);
    let order_labels = lines
        .iter()
        .filter_map(|l| {
            let label = split_label_line(l).map(|(label, _)| label).unwrap_or(l);
            match order_set.lookup(&fold(label))?.target {
                LabelTarget::Field(spec) if ORDER_ONLY_LABELS.contains(&spec.key) => Some(spec.key),
                _ => None,
            }
        })
        .collect::<std::collections::BTreeSet<_>>();
    if titles.contains(&FormKind::Order) || order_labels.len() >= 3 {
        return BodyRead::Order;
    }
    BodyRead::Nothing
}

/// `Label: value` (or `Label<TAB>value`).
fn split_label_line(line: &str) -> Option<(&str, &str)> {
    let pos = line.find([':', '\t'])?;
    let (label, rest) = line.split_at(pos);
    Some((label.trim(), rest[1..].trim()))
}

fn yes_no_text(value: &str) -> &'static str {
    let v = value.trim().to_lowercase();
    if v.starts_with("ja") || v == "x" || v == "[x]" || v.starts_with('☒') || v.starts_with('✓')
    {
        YES
    } else {
        NO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_notice_needs_its_title_or_kortnummer_and_two_more_labels() {
        let body = "Hej!\n\nKortinnehavarens namn: Anna Åström\nPersonnummer: 19121212-1212\nKortnummer: 9752 2679 0010 0000 1234\nVårdenhet: VC Ekmansgatan\nKlippt kort mottaget: Ja\nVerksamhetschef: Örjan\nDatum: 2026-11-18\n\nMed vänlig hälsning\nÖrjan Lindqvist\nVerksamhetschef\n";
        let BodyRead::Notice(form) = read_body(body) else {
            panic!("no notice")
        };
        assert_eq!(form.values["klippt_kort"], "Ja");
        assert_eq!(form.values["vc_namn"], "Örjan");
        assert_eq!(form.values.len(), 7);
        assert_eq!(
            read_body("Kortnummer: 1\nDatum: 2026-11-18"),
            BodyRead::Nothing
        );
    }

    #[test]
    fn an_order_in_the_body_is_recognised() {
        assert_eq!(
            read_body("Förnamn: Anna\nEfternamn: Å\nBefattning: SSK\n"),
            BodyRead::Order
        );
        assert_eq!(read_body("Beställning av eTjänstekort\n"), BodyRead::Order);
        assert_eq!(
            read_body("Här kommer en beställning av eTjänstekort"),
            BodyRead::Nothing
        );
    }
}
