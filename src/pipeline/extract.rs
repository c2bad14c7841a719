//! Stage 2: find forms wherever SPEC §2.1 puts them — AcroForm fields, a PDF text layer, the
//! body of the email (deregistration notices) — and read their raw values.

use crate::forms::labels::{fold, title_kind, LabelSet, LabelTarget};
use crate::forms::spec::{FieldType, FormKind, FORM_ID_FIELD, NO, YES};
use crate::pdf::{read_pdf, AcroField, FieldKind, PdfDocument, PdfLimits};
use crate::pipeline::layout::{read_forms, PageWords, RawForm, Word};
use crate::pipeline::parse::Attachment;

/// What one attachment gave.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentRead {
    Forms(Vec<RawForm>),
    /// Readable, but holds no form (a cover letter, an invoice, a file type we do not read).
    NoForm,
    /// A PDF or image that could not be read at all; the text says why (no personal data).
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttachmentType {
    Pdf,
    Image,
    Other,
}

fn attachment_type(att: &Attachment) -> AttachmentType {
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
}

pub fn read_attachment(att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
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
        AttachmentType::Image => {
            AttachmentRead::Unreadable("an image: text recognition (OCR) is not available".into())
        }
        AttachmentType::Pdf => match read_pdf(&att.data, &limits.pdf) {
            Err(e) => AttachmentRead::Unreadable(e.to_string()),
            Ok(doc) => read_pdf_document(&doc),
        },
        AttachmentType::Other => AttachmentRead::NoForm,
    }
}

fn read_pdf_document(doc: &PdfDocument) -> AttachmentRead {
    if let Some(form) = acroform(doc) {
        return AttachmentRead::Forms(vec![form]);
    }
    let pages: Vec<PageWords> = doc
        .pages
        .iter()
        .map(|p| PageWords {
            number: p.number,
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
        })
        .collect();
    let forms = read_forms(&pages);
    if !forms.is_empty() {
        return AttachmentRead::Forms(forms);
    }
    let has_text = doc.pages.iter().any(|p| {
        p.words
            .iter()
            .any(|w| w.text.chars().any(char::is_alphanumeric))
    });
    let has_images = doc.pages.iter().any(|p| p.image_count > 0);
    if !has_text && has_images {
        AttachmentRead::Unreadable(
            "only images, no text: text recognition (OCR) is not available".into(),
        )
    } else {
        AttachmentRead::NoForm
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
    Some(form)
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
