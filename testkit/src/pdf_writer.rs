//! Filled forms TJID-101 and TJID-102 in the layouts providers are known to send, which the
//! tests, the fixture generators and the benchmarks use to imitate real mail. The office's own
//! fillable form is the crate's (`tjid_intake::forms::pdf_writer`, behind `forms write`); the
//! printed layouts here are drawn with its [`draw`](tjid_intake::forms::pdf_writer::draw)
//! module, and field names, labels and options come from `tjid_intake::forms::spec`.
//!
//! Layouts (A4 portrait):
//! - [`Layout::Fillable`]: the office's AcroForm, filled in.
//! - [`Layout::SameLine`]: flattened text, one `Label: value` line per field.
//! - [`Layout::SameLineTwoPages`]: the same, with the fields from "Verksamhetschef" onwards on a
//!   continuation page that has no title.
//! - [`Layout::Table`]: a two-column grid of cells, the value below the label in each cell.
//! - [`Layout::Legacy`]: an older version of the form: upper-case labels without colons, the value
//!   at a fixed column, the person's data first.

use std::collections::BTreeMap;

use tjid_intake::forms::pdf_writer::draw::*;
use tjid_intake::forms::pdf_writer::fillable_form;
use tjid_intake::forms::spec::*;

/// How a form is laid out on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The office's fillable AcroForm (the blank form, or one filled in a PDF viewer), written by
    /// the crate's [`fillable_form`].
    Fillable,
    /// Flattened: one `Label: value` line per field, choices as `[X] Option   [ ] Option`.
    SameLine,
    /// Like [`Layout::SameLine`], with the fields from "Verksamhetschef" on a second page
    /// without a title ("Sida 2 av 2").
    SameLineTwoPages,
    /// A two-column grid of drawn cells, each with its label on top and the value below it.
    Table,
    /// The 2019 version of the form: upper-case labels, the value at a fixed column, a different
    /// field order and `(TJID-10x version 2019)` after the title.
    Legacy,
}

/// One form to print: its kind, its layout and the values to print, by field key.
///
/// Text fields print their value as given (any text, valid or not). A choice field holds the
/// comma-separated export values to mark (`Nytt`, `Nytt,Ersattning`; an option's printed label
/// is accepted too); empty or absent marks none. `klippt_kort` holds `Ja` (box marked), `Nej`
/// (printed/answered no) or nothing: an absent key leaves the line out (SameLine, Legacy), an
/// empty box (Table) or an untouched checkbox without `/V` (Fillable). The key `blankett`
/// overrides the value of the hidden form-id field of a Fillable form (default: the form id).
/// The key `underskrift` (orders only) draws a signature in the signature box.
pub struct FilledForm<'a> {
    pub kind: FormKind,
    pub layout: Layout,
    pub values: &'a BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("no form to render")]
    NoForms,
    #[error("a fillable form must be alone in its document, but {count} forms were given")]
    FillableNotAlone { count: usize },
    #[error("{form_id} has no field `{key}`")]
    UnknownField { form_id: &'static str, key: String },
}

/// One PDF holding `forms` in order, each starting on a new page. A [`Layout::Fillable`] form
/// must be alone in its document (an AcroForm belongs to the whole document).
pub fn render(forms: &[FilledForm<'_>]) -> Result<Vec<u8>, WriteError> {
    if forms.is_empty() {
        return Err(WriteError::NoForms);
    }
    if forms.len() > 1 && forms.iter().any(|f| f.layout == Layout::Fillable) {
        return Err(WriteError::FillableNotAlone { count: forms.len() });
    }
    for form in forms {
        if let Some(key) = form.values.keys().find(|k| {
            k.as_str() != FORM_ID_FIELD
                && !(k.as_str() == SIGNATURE_KEY && form.kind == FormKind::Order)
                && form.kind.field(k).is_none()
        }) {
            return Err(WriteError::UnknownField {
                form_id: form.kind.form_id(),
                key: key.clone(),
            });
        }
    }
    if let [form @ FilledForm {
        layout: Layout::Fillable,
        ..
    }] = forms
    {
        return Ok(fillable_form(form.kind, form.values));
    }
    let mut pdf = Pdf::new();
    for form in forms {
        match form.layout {
            Layout::Fillable => unreachable!("a fillable form is alone in its document"),
            Layout::SameLine => same_line(&mut pdf, form.kind, form.values, false),
            Layout::SameLineTwoPages => same_line(&mut pdf, form.kind, form.values, true),
            Layout::Table => table(&mut pdf, form.kind, form.values),
            Layout::Legacy => legacy(&mut pdf, form.kind, form.values),
        }
    }
    Ok(pdf.finish(None))
}

/// A plain one-page letter (a cover letter, an invoice) holding `lines` and no form. Long lines
/// are wrapped; when the text is longer than a page the font is made smaller (down to 4 pt).
pub fn render_text_page(lines: &[&str]) -> Vec<u8> {
    const TOP: f32 = 780.0;
    const BOTTOM: f32 = 50.0;
    let width = MARGIN_RIGHT - MARGIN_LEFT - 10.0;
    let mut size = 11.0_f32;
    let wrapped = loop {
        let wrapped: Vec<String> = lines
            .iter()
            .flat_map(|l| wrap(l, Font::Regular, size, width))
            .collect();
        if wrapped.len() as f32 * size * 1.35 <= TOP - BOTTOM || size <= 4.0 {
            break wrapped;
        }
        size -= 0.5;
    };
    let mut pdf = Pdf::new();
    let mut c = Canvas::default();
    let mut y = TOP;
    for line in &wrapped {
        if y < BOTTOM - size {
            break;
        }
        c.text(Font::Regular, size, MARGIN_LEFT + 10.0, y, line);
        y -= size * 1.35;
    }
    pdf.push_page(c);
    pdf.finish(None)
}

/// The value of the signature key in [`example_values`]: any value signs the form.
pub const SIGNED_EXAMPLE: &str = "ja";

/// A fully valid filled example of `kind`, one value per field in the order of the spec table.
pub fn example_values(kind: FormKind) -> BTreeMap<String, String> {
    let values: &[&str] = match kind {
        FormKind::Order => &[
            "Västra Götalandsregionen",               // Vårdgivare
            "232100-0131",                            // Organisationsnummer
            "Vårdcentralen Ekmansgatan",              // Vårdenhet
            "SE2321000131-E000000000101",             // Vårdenhetens HSA-id
            "Anna-Karin",                             // Förnamn
            "Åström",                                 // Efternamn
            "19121212-1212",                          // Personnummer
            "anna-karin.astrom@vgregion.se",          // E-postadress
            "070-123 45 67",                          // Mobiltelefon
            "Sjuksköterska",                          // Befattning
            BESTALLNINGSTYP_OPTIONS[0].export,        // Beställningen avser: Nytt kort
            UTLAMNING_OPTIONS[0].export,              // Utlämning: Utlämningsställe
            "Receptionen, Vårdcentralen Ekmansgatan", // Utlämningsställe (namn)
            "Örjan Lindqvist",                        // Verksamhetschef
            "orjan.lindqvist@vgregion.se",            // Verksamhetschefens e-post
            "031-345 67 00",                          // Telefon
            "2026-11-18",                             // Datum
        ],
        FormKind::Deregistration => &[
            "Anna-Karin Åström",          // Kortinnehavarens namn
            "19121212-1212",              // Personnummer
            "9752 2679 0010 0000 120",    // Kortnummer: 19 digits, 9752, issuer 2679, Luhn ok
            "Vårdcentralen Ekmansgatan",  // Vårdenhet
            "SE2321000131-E000000000101", // Vårdenhetens HSA-id
            YES,                          // Klippt kort mottaget
            "Örjan Lindqvist",            // Verksamhetschef
            "2026-11-18",                 // Datum
        ],
    };
    debug_assert_eq!(values.len(), kind.fields().len());
    let mut filled: BTreeMap<String, String> = kind
        .fields()
        .iter()
        .zip(values)
        .map(|(f, v)| (f.key.to_string(), v.to_string()))
        .collect();
    // An order is signed (SPEC §2.2): a drawn signature in its box. Remove the key for an
    // unsigned one.
    if kind == FormKind::Order {
        filled.insert(SIGNATURE_KEY.to_string(), SIGNED_EXAMPLE.to_string());
    }
    filled
}

// ---------------------------------------------------------------------------------------------
// Printed texts and choices.

/// The version printed after the title of the [`Layout::Legacy`] form.
const LEGACY_VERSION: &str = "version 2019";

fn page_of(page: usize, pages: usize) -> String {
    format!("Sida {page} av {pages}")
}

/// `[X] Nytt kort   [ ] Ersättningskort   [ ] Förnyelse`
fn bracketed_choices(options: &[ChoiceOption], marked: &[bool]) -> String {
    options
        .iter()
        .zip(marked)
        .map(|(o, &m)| format!("[{}] {}", if m { "X" } else { " " }, o.label))
        .collect::<Vec<_>>()
        .join("   ")
}

// ---------------------------------------------------------------------------------------------
// SameLine and SameLineTwoPages.

const LINE_SIZE: f32 = 11.0;
const LINE_STEP: f32 = 22.0;

fn same_line(pdf: &mut Pdf, kind: FormKind, values: &BTreeMap<String, String>, two_pages: bool) {
    let fields = kind.fields();
    // The continuation page starts at "Verksamhetschef".
    let split = if two_pages {
        fields
            .iter()
            .position(|f| f.key.starts_with("vc_"))
            .unwrap_or(fields.len())
    } else {
        fields.len()
    };
    let pages = if two_pages { 2 } else { 1 };
    let mut c = Canvas::default();
    draw_title_block(&mut c, kind, kind.title());
    let mut y = FIELDS_TOP - 6.0;
    for f in &fields[..split] {
        if let Some(line) = same_line_text(f, values) {
            draw_line(&mut c, y, &line);
            y -= LINE_STEP;
        }
    }
    if two_pages {
        c.text_right(Font::Regular, 9.0, MARGIN_RIGHT, 40.0, &page_of(1, pages));
        pdf.push_page(c);
        c = Canvas::default();
        draw_continuation_header(&mut c);
        y = 770.0;
        for f in &fields[split..] {
            if let Some(line) = same_line_text(f, values) {
                draw_line(&mut c, y, &line);
                y -= LINE_STEP;
            }
        }
        c.text_right(Font::Regular, 9.0, MARGIN_RIGHT, 40.0, &page_of(2, pages));
    }
    draw_signature_box(&mut c);
    sign_box(&mut c, values);
    pdf.push_page(c);
}

fn draw_line(c: &mut Canvas, y: f32, line: &str) {
    let size = fit_size(Font::Regular, line, CONTENT_WIDTH, LINE_SIZE, 6.0);
    c.clip(MARGIN_LEFT - 2.0, y - 6.0, CONTENT_WIDTH + 4.0, 20.0);
    c.text(Font::Regular, size, MARGIN_LEFT, y, line);
    c.end_clip();
}

/// `Label: value`, or `None` for a Ja/Nej field that is absent.
fn same_line_text(f: &FieldSpec, values: &BTreeMap<String, String>) -> Option<String> {
    let v = value(values, f.key);
    let shown = match f.field_type {
        FieldType::Text => v.unwrap_or("").to_string(),
        FieldType::Choice(options) => bracketed_choices(options, &chosen(options, v).0),
        FieldType::YesNo => v?.to_string(),
    };
    Some(format!("{}: {}", f.label, shown))
}

// ---------------------------------------------------------------------------------------------
// Table.

const CELL_LABEL_SIZE: f32 = 8.0;
const CELL_VALUE_SIZE: f32 = 11.0;
const CELL_HEIGHT: f32 = 40.0;
const SIGNATURE_CELL_HEIGHT: f32 = 62.0;
/// Side of a drawn mark box in Table and Legacy.
const PRINTED_BOX: f32 = 11.0;

fn table(pdf: &mut Pdf, kind: FormKind, values: &BTreeMap<String, String>) {
    let mut c = Canvas::default();
    draw_title_block(&mut c, kind, kind.title());
    // The fields in order, two to a row, and the signature as the last cell.
    let mut cells: Vec<Option<&FieldSpec>> = kind.fields().iter().map(Some).collect();
    cells.push(None);
    let col_w = CONTENT_WIDTH / 2.0;
    let mut top = FIELDS_TOP;
    for row in cells.chunks(2) {
        let height = if row.contains(&None) {
            SIGNATURE_CELL_HEIGHT
        } else {
            CELL_HEIGHT
        };
        for (col, cell) in row.iter().enumerate() {
            let x = MARGIN_LEFT + col as f32 * col_w;
            c.rect(x, top - height, col_w, height, 0.8);
            let Some(f) = cell else {
                c.text(
                    Font::Regular,
                    CELL_LABEL_SIZE,
                    x + 4.0,
                    top - 10.0,
                    SIGNATURE_LABEL,
                );
                if values.contains_key(SIGNATURE_KEY) {
                    draw_signature(&mut c, x, top - height, col_w, height - 14.0);
                }
                continue;
            };
            c.text(Font::Regular, CELL_LABEL_SIZE, x + 4.0, top - 10.0, f.label);
            let base = top - 27.0;
            let v = value(values, f.key);
            match f.field_type {
                FieldType::Text => {
                    let text = single_line(v.unwrap_or(""));
                    let size = fit_size(Font::Regular, &text, col_w - 8.0, CELL_VALUE_SIZE, 6.0);
                    c.clip(x + 1.0, top - height + 1.0, col_w - 2.0, height - 2.0);
                    c.text(Font::Regular, size, x + 4.0, base, &text);
                    c.end_clip();
                }
                FieldType::Choice(options) => {
                    let (marked, _) = chosen(options, v);
                    let labels: Vec<&str> = options.iter().map(|o| o.label).collect();
                    draw_boxed_options(&mut c, x + 4.0, base, col_w - 8.0, &labels, &marked);
                }
                FieldType::YesNo => {
                    let yn = yes_no(v);
                    draw_mark_box(&mut c, x + 4.0, base, yn == YesNoValue::Yes);
                    if let YesNoValue::Other(s) = yn {
                        let s = single_line(s);
                        c.text(
                            Font::Regular,
                            CELL_VALUE_SIZE,
                            x + 4.0 + PRINTED_BOX + 4.0,
                            base,
                            &s,
                        );
                    }
                }
            }
        }
        top -= height;
    }
    pdf.push_page(c);
}

/// A drawn square whose bottom is just below `baseline`, with the text `X` inside when marked.
fn draw_mark_box(c: &mut Canvas, x: f32, baseline: f32, marked: bool) {
    c.rect(x, baseline - 2.0, PRINTED_BOX, PRINTED_BOX, 1.0);
    if marked {
        let size = 10.0;
        let w = text_width(Font::Bold, size, "X");
        c.text(Font::Bold, size, x + (PRINTED_BOX - w) / 2.0, baseline, "X");
    }
}

/// Options after each other on one line, each preceded by a mark box; the font is made smaller
/// when they do not fit `width`.
fn draw_boxed_options(
    c: &mut Canvas,
    x: f32,
    baseline: f32,
    width: f32,
    labels: &[&str],
    marked: &[bool],
) {
    let gap = 12.0;
    let natural: f32 = labels
        .iter()
        .map(|l| text_width(Font::Regular, 1.0, l))
        .sum();
    let fixed = labels.len() as f32 * (PRINTED_BOX + 4.0 + gap);
    let size = ((width - fixed) / natural).clamp(6.0, CELL_VALUE_SIZE);
    let mut ox = x;
    for (label, &m) in labels.iter().zip(marked) {
        draw_mark_box(c, ox, baseline, m);
        c.text(Font::Regular, size, ox + PRINTED_BOX + 4.0, baseline, label);
        ox += PRINTED_BOX + 4.0 + text_width(Font::Regular, size, label) + gap;
    }
}

// ---------------------------------------------------------------------------------------------
// Legacy.

/// The field order of the 2019 form: the person's data (the text fields before the first choice
/// that are neither about the unit nor the provider), then the unit, then the provider, then the
/// rest in table order.
fn legacy_order(fields: &'static [FieldSpec]) -> Vec<&'static FieldSpec> {
    let first_choice = fields
        .iter()
        .position(|f| !matches!(f.field_type, FieldType::Text))
        .unwrap_or(fields.len());
    let group = |(i, f): (usize, &FieldSpec)| {
        if f.key.starts_with("vardenhet_") {
            1
        } else if f.key.starts_with("vardgivare_") {
            2
        } else if i < first_choice {
            0
        } else {
            3
        }
    };
    let mut ordered: Vec<(usize, &'static FieldSpec)> = fields.iter().enumerate().collect();
    ordered.sort_by_key(|&(i, f)| (group((i, f)), i));
    ordered.into_iter().map(|(_, f)| f).collect()
}

fn legacy(pdf: &mut Pdf, kind: FormKind, values: &BTreeMap<String, String>) {
    let mut c = Canvas::default();
    let title = format!("{}  ({} {})", kind.title(), kind.form_id(), LEGACY_VERSION);
    draw_title_block(&mut c, kind, &title);
    let label_size = 9.5;
    let labels: Vec<String> = kind
        .fields()
        .iter()
        .map(|f| f.label.to_uppercase())
        .collect();
    let widest = labels
        .iter()
        .map(|l| text_width(Font::Regular, label_size, l))
        .fold(0.0, f32::max);
    let column = (MARGIN_LEFT + widest + 30.0).max(220.0);
    let mut y = FIELDS_TOP - 6.0;
    for f in legacy_order(kind.fields()) {
        let v = value(values, f.key);
        if f.field_type == FieldType::YesNo && v.is_none() {
            continue;
        }
        c.text(
            Font::Regular,
            label_size,
            MARGIN_LEFT,
            y,
            &f.label.to_uppercase(),
        );
        let width = MARGIN_RIGHT - column;
        match f.field_type {
            FieldType::Text => {
                let text = single_line(v.unwrap_or(""));
                let size = fit_size(Font::Regular, &text, width, CELL_VALUE_SIZE, 6.0);
                c.clip(column, y - 8.0, width, 24.0);
                c.text(Font::Regular, size, column, y, &text);
                c.end_clip();
                c.gray_line(column - 2.0, y - 3.5, MARGIN_RIGHT, y - 3.5);
            }
            FieldType::Choice(options) => {
                let (marked, _) = chosen(options, v);
                let labels: Vec<&str> = options.iter().map(|o| o.label).collect();
                draw_boxed_options(&mut c, column, y, width, &labels, &marked);
            }
            FieldType::YesNo => {
                let yn = yes_no(v);
                draw_mark_box(&mut c, column, y, yn == YesNoValue::Yes);
                if let YesNoValue::Other(s) = yn {
                    c.text(
                        Font::Regular,
                        CELL_VALUE_SIZE,
                        column + PRINTED_BOX + 4.0,
                        y,
                        &single_line(s),
                    );
                }
            }
        }
        y -= 24.0;
    }
    draw_signature_box(&mut c);
    sign_box(&mut c, values);
    pdf.push_page(c);
}

#[cfg(test)]
mod tests;
