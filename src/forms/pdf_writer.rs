//! Writes the office's own forms TJID-101 ("Beställning av eTjänstekort") and TJID-102
//! ("Avregistrering av eTjänstekort") as PDF (SPEC §2): the blank fillable forms that care
//! providers download, and filled variants in the layouts providers are known to send, which the
//! test-fixture generator uses to imitate real mail.
//!
//! Names, labels and choice options come from [`super::spec`]; nothing here repeats them.
//! Text is set in the standard fonts Helvetica and Helvetica-Bold with `WinAnsiEncoding`, so no
//! font is embedded; characters outside WinAnsi are printed as `?`.
//!
//! Layouts (A4 portrait):
//! - [`Layout::Fillable`]: an AcroForm with one widget per field (text boxes, radio groups, a
//!   checkbox, a hidden read-only `blankett` field and a signature field `underskrift`).
//! - [`Layout::SameLine`]: flattened text, one `Label: value` line per field.
//! - [`Layout::SameLineTwoPages`]: the same, with the fields from "Verksamhetschef" onwards on a
//!   continuation page that has no title.
//! - [`Layout::Table`]: a two-column grid of cells, the value below the label in each cell.
//! - [`Layout::Legacy`]: an older version of the form: upper-case labels without colons, the value
//!   at a fixed column, the person's data first.

use std::collections::BTreeMap;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

use super::spec::*;

/// How a form is laid out on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The office's fillable AcroForm (the blank form, or one filled in a PDF viewer).
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
    #[error("could not write the PDF: {0}")]
    Io(#[from] std::io::Error),
}

/// The blank fillable form of `kind` (only the hidden field `blankett` is filled).
pub fn blank_form(kind: FormKind) -> Vec<u8> {
    let values = BTreeMap::new();
    render(&[FilledForm {
        kind,
        layout: Layout::Fillable,
        values: &values,
    }])
    .expect("a blank form has no values that could be refused")
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
        if let Some(key) = form
            .values
            .keys()
            .find(|k| k.as_str() != FORM_ID_FIELD && form.kind.field(k).is_none())
        {
            return Err(WriteError::UnknownField {
                form_id: form.kind.form_id(),
                key: key.clone(),
            });
        }
    }
    let mut pdf = Pdf::new();
    let mut acroform = None;
    for form in forms {
        match form.layout {
            Layout::Fillable => acroform = Some(fillable(&mut pdf, form.kind, form.values)),
            Layout::SameLine => same_line(&mut pdf, form.kind, form.values, false),
            Layout::SameLineTwoPages => same_line(&mut pdf, form.kind, form.values, true),
            Layout::Table => table(&mut pdf, form.kind, form.values),
            Layout::Legacy => legacy(&mut pdf, form.kind, form.values),
        }
    }
    pdf.finish(acroform)
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
    let page = pdf.doc.new_object_id();
    pdf.add_page(page, c, Vec::new());
    pdf.finish(None)
        .expect("writing a PDF to memory does not fail")
}

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
    kind.fields()
        .iter()
        .zip(values)
        .map(|(f, v)| (f.key.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Page geometry and the printed texts common to all layouts.

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN_LEFT: f32 = 50.0;
const MARGIN_RIGHT: f32 = 545.0;
const CONTENT_WIDTH: f32 = MARGIN_RIGHT - MARGIN_LEFT;
/// Where the fields start on a page with a title.
const FIELDS_TOP: f32 = 722.0;
/// The signature box (all layouts but Table, which has it as a cell).
const SIGNATURE_BOX: (f32, f32, f32, f32) = (MARGIN_LEFT, 70.0, 247.5, 60.0);

const HEADER: &str = "Västra Götalandsregionen · TjänsteID-service";
const INSTRUCTION: &str =
    "Fyll i alla fält. Skriv under och skicka blanketten som bilaga till tjansteid@vgregion.se.";
/// The version printed after the title of the [`Layout::Legacy`] form.
const LEGACY_VERSION: &str = "version 2019";

/// Header line, form id at the top right, the title in bold and the instruction line.
fn draw_title_block(c: &mut Canvas, kind: FormKind, title: &str) {
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 806.0, HEADER);
    c.text_right(Font::Bold, 12.0, MARGIN_RIGHT, 806.0, kind.form_id());
    c.line(MARGIN_LEFT, 798.0, MARGIN_RIGHT, 798.0, 0.8);
    let size = fit_size(Font::Bold, title, CONTENT_WIDTH, 18.0, 10.0);
    c.text(Font::Bold, size, MARGIN_LEFT, 768.0, title);
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 748.0, INSTRUCTION);
}

/// The header of a continuation page: no title, no form id (the page number is in the footer).
fn draw_continuation_header(c: &mut Canvas) {
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 806.0, HEADER);
    c.line(MARGIN_LEFT, 798.0, MARGIN_RIGHT, 798.0, 0.8);
}

fn page_of(page: usize, pages: usize) -> String {
    format!("Sida {page} av {pages}")
}

/// The box for the signature, labelled above it.
fn draw_signature_box(c: &mut Canvas) {
    let (x, y, w, h) = SIGNATURE_BOX;
    c.text(Font::Regular, 8.5, x, y + h + 4.0, SIGNATURE_LABEL);
    c.rect(x, y, w, h, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Field values.

fn value<'v>(values: &'v BTreeMap<String, String>, key: &str) -> Option<&'v str> {
    values.get(key).map(String::as_str)
}

/// Which options of a choice are marked, and the tokens that name no option.
fn chosen<'v>(options: &[ChoiceOption], value: Option<&'v str>) -> (Vec<bool>, Vec<&'v str>) {
    let mut marked = vec![false; options.len()];
    let mut unknown = Vec::new();
    for token in value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        match options.iter().position(|o| {
            o.export.eq_ignore_ascii_case(token) || o.label.to_lowercase() == token.to_lowercase()
        }) {
            Some(i) => marked[i] = true,
            None => unknown.push(token),
        }
    }
    (marked, unknown)
}

/// The value of a Ja/Nej field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YesNoValue<'v> {
    Absent,
    Empty,
    Yes,
    No,
    Other(&'v str),
}

fn yes_no(value: Option<&str>) -> YesNoValue<'_> {
    match value {
        None => YesNoValue::Absent,
        Some(v) if v.trim().is_empty() => YesNoValue::Empty,
        Some(v) if v.trim().eq_ignore_ascii_case(YES) => YesNoValue::Yes,
        Some(v) if v.trim().eq_ignore_ascii_case(NO) => YesNoValue::No,
        Some(v) => YesNoValue::Other(v),
    }
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
// Fillable (AcroForm).

/// Field flags (PDF 32000-1 §12.7.4).
const FF_READ_ONLY: i64 = 1;
const FF_NO_TOGGLE_TO_OFF: i64 = 1 << 14;
const FF_RADIO: i64 = 1 << 15;
/// Annotation flags.
const F_HIDDEN: i64 = 2;
const F_PRINT: i64 = 4;

/// Side of the square of a radio button or checkbox.
const MARK_BOX: f32 = 12.0;
/// Height of a text box of the fillable form.
const TEXT_BOX_HEIGHT: f32 = 24.0;
const FILLABLE_TEXT_SIZE: f32 = 10.0;

/// The rows of the fillable form: text fields in pairs, a choice, a Ja/Nej box or a field that
/// depends on a choice on a row of its own.
fn fillable_rows(fields: &'static [FieldSpec]) -> Vec<Vec<&'static FieldSpec>> {
    let alone = |f: &FieldSpec| {
        !matches!(f.field_type, FieldType::Text)
            || matches!(f.requirement, Requirement::RequiredWhen { .. })
    };
    let mut rows = Vec::new();
    let mut i = 0;
    while i < fields.len() {
        if !alone(&fields[i]) && i + 1 < fields.len() && !alone(&fields[i + 1]) {
            rows.push(vec![&fields[i], &fields[i + 1]]);
            i += 2;
        } else {
            rows.push(vec![&fields[i]]);
            i += 1;
        }
    }
    rows
}

/// A PDF text string: PDFDocEncoding (plain ASCII) when possible, else UTF-16BE with a BOM.
fn text_string(s: &str) -> Object {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut bytes = vec![0xfe, 0xff];
        bytes.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

fn rect_array(x: f32, y: f32, w: f32, h: f32) -> Object {
    Object::Array(vec![x.into(), y.into(), (x + w).into(), (y + h).into()])
}

/// The appearance of a text widget of size `w`×`h` showing `text`, and the font size used.
fn text_appearance(pdf: &mut Pdf, w: f32, h: f32, text: &str) -> (ObjectId, f32) {
    let mut c = Canvas::default();
    c.raw("/Tx BMC\n");
    let shown = single_line(text);
    let size = fit_size(Font::Regular, &shown, w - 6.0, FILLABLE_TEXT_SIZE, 6.0);
    if !shown.is_empty() {
        c.raw(&format!("q 1 1 {} {} re W n\n", num(w - 2.0), num(h - 2.0)));
        c.text(Font::Regular, size, 3.0, (h - size * 0.72) / 2.0, &shown);
        c.raw("Q\n");
    }
    c.raw("EMC\n");
    (pdf.form_xobject(w, h, c), size)
}

/// The on and off appearances of a mark box: a white square with a border, with a bold X when on.
fn mark_appearances(pdf: &mut Pdf) -> (ObjectId, ObjectId) {
    let s = MARK_BOX;
    let mut off = Canvas::default();
    off.raw(&format!("1 g 0 0 {0} {0} re f 0 g\n", num(s)));
    off.rect(0.5, 0.5, s - 1.0, s - 1.0, 1.0);
    let mut on = Canvas::default();
    on.raw(&format!("1 g 0 0 {0} {0} re f 0 g\n", num(s)));
    on.rect(0.5, 0.5, s - 1.0, s - 1.0, 1.0);
    on.cross(0.0, 0.0, s);
    (pdf.form_xobject(s, s, on), pdf.form_xobject(s, s, off))
}

/// The common entries of a widget annotation on `page`.
fn widget(page: ObjectId, rect: Object) -> Dictionary {
    dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "Rect" => rect,
        "F" => F_PRINT,
        "P" => page,
    }
}

fn mark_widget_extras(dict: &mut Dictionary) {
    dict.set("DA", Object::string_literal("/ZaDb 0 Tf 0 g"));
    // No border or background colours: a viewer that rebuilds the appearance (NeedAppearances)
    // then draws only the mark (ZapfDingbats "8", a cross), over the box of the page content.
    dict.set("MK", dictionary! { "CA" => Object::string_literal("8") });
}

/// Draws the fillable form on one page and returns the AcroForm dictionary's id.
fn fillable(pdf: &mut Pdf, kind: FormKind, values: &BTreeMap<String, String>) -> ObjectId {
    let page = pdf.doc.new_object_id();
    let mut c = Canvas::default();
    draw_title_block(&mut c, kind, kind.title());
    let (on_ap, off_ap) = mark_appearances(pdf);
    let mut fields: Vec<Object> = Vec::new();
    let mut annots: Vec<Object> = Vec::new();
    let mut y = FIELDS_TOP;
    for row in fillable_rows(kind.fields()) {
        let col_w = if row.len() == 2 {
            (CONTENT_WIDTH - 15.0) / 2.0
        } else {
            CONTENT_WIDTH
        };
        for (col, f) in row.iter().enumerate() {
            let x = MARGIN_LEFT + col as f32 * (col_w + 15.0);
            let v = value(values, f.key);
            match f.field_type {
                FieldType::Text => {
                    c.text(Font::Regular, 8.5, x, y - 8.5, f.label);
                    let box_y = y - 12.0 - TEXT_BOX_HEIGHT;
                    c.rect(x, box_y, col_w, TEXT_BOX_HEIGHT, 0.8);
                    let (w, h) = (col_w - 2.0, TEXT_BOX_HEIGHT - 2.0);
                    let text = v.unwrap_or("");
                    let (ap, size) = text_appearance(pdf, w, h, text);
                    let mut dict = widget(page, rect_array(x + 1.0, box_y + 1.0, w, h));
                    dict.set("FT", "Tx");
                    dict.set("T", text_string(f.key));
                    dict.set("TU", text_string(f.label));
                    dict.set(
                        "DA",
                        Object::string_literal(format!("/Helv {} Tf 0 g", num(size))),
                    );
                    if !text.is_empty() {
                        dict.set("V", text_string(text));
                    }
                    dict.set("AP", dictionary! { "N" => ap });
                    let id = pdf.doc.add_object(dict);
                    fields.push(id.into());
                    annots.push(id.into());
                }
                FieldType::Choice(options) => {
                    c.text(Font::Regular, 8.5, x, y - 8.5, f.label);
                    let (marked, unknown) = chosen(options, v);
                    let parent = pdf.doc.new_object_id();
                    let mut kids = Vec::new();
                    let mut ox = x;
                    let box_y = y - 14.0 - MARK_BOX;
                    for (o, &m) in options.iter().zip(&marked) {
                        c.rect(ox, box_y, MARK_BOX, MARK_BOX, 1.0);
                        c.text(
                            Font::Regular,
                            10.0,
                            ox + MARK_BOX + 5.0,
                            box_y + 2.5,
                            o.label,
                        );
                        let mut dict = widget(page, rect_array(ox, box_y, MARK_BOX, MARK_BOX));
                        dict.set("Parent", parent);
                        dict.set("AS", if m { o.export } else { "Off" });
                        dict.set(
                            "AP",
                            dictionary! {
                                "N" => dictionary! { o.export => on_ap, "Off" => off_ap },
                            },
                        );
                        mark_widget_extras(&mut dict);
                        let id = pdf.doc.add_object(dict);
                        kids.push(Object::from(id));
                        annots.push(id.into());
                        ox += MARK_BOX + 5.0 + text_width(Font::Regular, 10.0, o.label) + 28.0;
                    }
                    let mut dict = dictionary! {
                        "FT" => "Btn",
                        "Ff" => FF_RADIO | FF_NO_TOGGLE_TO_OFF,
                        "T" => text_string(f.key),
                        "TU" => text_string(f.label),
                        "Kids" => kids,
                    };
                    // A radio group holds one value: the first marked option, or else the first
                    // token that names no option (a broken form).
                    let first = options
                        .iter()
                        .zip(&marked)
                        .find(|(_, &m)| m)
                        .map(|(o, _)| o.export);
                    if let Some(v) = first.or(unknown.first().copied()) {
                        dict.set("V", Object::Name(v.as_bytes().to_vec()));
                    }
                    pdf.doc.set_object(parent, dict);
                    fields.push(parent.into());
                }
                FieldType::YesNo => {
                    let box_y = y - 8.0 - MARK_BOX;
                    c.rect(x, box_y, MARK_BOX, MARK_BOX, 1.0);
                    c.text(
                        Font::Regular,
                        10.0,
                        x + MARK_BOX + 5.0,
                        box_y + 2.5,
                        f.label,
                    );
                    let state: Option<&str> = match yes_no(v) {
                        YesNoValue::Absent | YesNoValue::Empty => None,
                        YesNoValue::Yes => Some(YES),
                        YesNoValue::No => Some("Off"),
                        YesNoValue::Other(s) => Some(s.trim()),
                    };
                    let mut dict = widget(page, rect_array(x, box_y, MARK_BOX, MARK_BOX));
                    dict.set("FT", "Btn");
                    dict.set("T", text_string(f.key));
                    dict.set("TU", text_string(f.label));
                    if let Some(s) = state {
                        dict.set("V", Object::Name(s.as_bytes().to_vec()));
                    }
                    dict.set("AS", if state == Some(YES) { YES } else { "Off" });
                    dict.set(
                        "AP",
                        dictionary! { "N" => dictionary! { YES => on_ap, "Off" => off_ap } },
                    );
                    mark_widget_extras(&mut dict);
                    let id = pdf.doc.add_object(dict);
                    fields.push(id.into());
                    annots.push(id.into());
                }
            }
        }
        y -= match row[0].field_type {
            FieldType::Text => 48.0,
            FieldType::Choice(_) => 40.0,
            FieldType::YesNo => 36.0,
        };
    }

    // The hidden, read-only form id.
    let form_id = value(values, FORM_ID_FIELD).unwrap_or(kind.form_id());
    let (w, h) = (80.0, 16.0);
    let (ap, _) = text_appearance(pdf, w, h, form_id);
    let mut dict = widget(page, rect_array(MARGIN_RIGHT - w, 820.0 - h, w, h));
    dict.set("F", F_HIDDEN);
    dict.set("FT", "Tx");
    dict.set("Ff", FF_READ_ONLY);
    dict.set("T", text_string(FORM_ID_FIELD));
    dict.set("DA", Object::string_literal("/Helv 10 Tf 0 g"));
    dict.set("V", text_string(form_id));
    dict.set("AP", dictionary! { "N" => ap });
    let id = pdf.doc.add_object(dict);
    fields.push(id.into());
    annots.push(id.into());

    // The signature box, with an (unsigned) signature field over it.
    draw_signature_box(&mut c);
    let (x, sy, w, h) = SIGNATURE_BOX;
    let mut dict = widget(page, rect_array(x, sy, w, h));
    dict.set("FT", "Sig");
    dict.set("T", text_string(SIGNATURE_FIELD));
    dict.set("TU", text_string(SIGNATURE_LABEL));
    let id = pdf.doc.add_object(dict);
    fields.push(id.into());
    annots.push(id.into());

    pdf.add_page(page, c, annots);
    let fonts = pdf.font_resources();
    pdf.doc.add_object(dictionary! {
        "Fields" => fields,
        "NeedAppearances" => true,
        "DA" => Object::string_literal("/Helv 0 Tf 0 g"),
        "DR" => dictionary! { "Font" => fonts },
    })
}

/// The AcroForm name of the signature field (not read by the intake).
const SIGNATURE_FIELD: &str = "underskrift";

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
        let page = pdf.doc.new_object_id();
        pdf.add_page(page, c, Vec::new());
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
    let page = pdf.doc.new_object_id();
    pdf.add_page(page, c, Vec::new());
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
    let page = pdf.doc.new_object_id();
    pdf.add_page(page, c, Vec::new());
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
    let page = pdf.doc.new_object_id();
    pdf.add_page(page, c, Vec::new());
}

// ---------------------------------------------------------------------------------------------
// The document.

struct Pdf {
    doc: Document,
    pages_id: ObjectId,
    helvetica: ObjectId,
    helvetica_bold: ObjectId,
    zapf_dingbats: ObjectId,
    pages: Vec<ObjectId>,
}

impl Pdf {
    fn new() -> Pdf {
        let mut doc = Document::with_version("1.7");
        let pages_id = doc.new_object_id();
        let mut font = |name: &str| {
            doc.add_object(dictionary! {
                "Type" => "Font",
                "Subtype" => "Type1",
                "BaseFont" => name.to_string(),
                "Encoding" => "WinAnsiEncoding",
            })
        };
        let helvetica = font("Helvetica");
        let helvetica_bold = font("Helvetica-Bold");
        let zapf_dingbats = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "ZapfDingbats",
        });
        Pdf {
            doc,
            pages_id,
            helvetica,
            helvetica_bold,
            zapf_dingbats,
            pages: Vec::new(),
        }
    }

    fn font_resources(&self) -> Dictionary {
        dictionary! {
            Font::Regular.resource() => self.helvetica,
            Font::Bold.resource() => self.helvetica_bold,
            "ZaDb" => self.zapf_dingbats,
        }
    }

    fn add_page(&mut self, page: ObjectId, content: Canvas, annots: Vec<Object>) {
        let contents = self
            .doc
            .add_object(Stream::new(Dictionary::new(), content.ops));
        let mut dict = dictionary! {
            "Type" => "Page",
            "Parent" => self.pages_id,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_WIDTH.into(), PAGE_HEIGHT.into()],
            "Resources" => dictionary! { "Font" => self.font_resources() },
            "Contents" => contents,
        };
        if !annots.is_empty() {
            dict.set("Annots", annots);
        }
        self.doc.set_object(page, dict);
        self.pages.push(page);
    }

    /// A form XObject (an appearance stream) of size `w`×`h`.
    fn form_xobject(&mut self, w: f32, h: f32, content: Canvas) -> ObjectId {
        let dict = dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), w.into(), h.into()],
            "Resources" => dictionary! { "Font" => self.font_resources() },
        };
        self.doc.add_object(Stream::new(dict, content.ops))
    }

    fn finish(mut self, acroform: Option<ObjectId>) -> Result<Vec<u8>, WriteError> {
        let count = self.pages.len() as i64;
        let kids: Vec<Object> = self.pages.iter().map(|&p| p.into()).collect();
        self.doc.set_object(
            self.pages_id,
            dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count },
        );
        let mut catalog = dictionary! {
            "Type" => "Catalog",
            "Pages" => self.pages_id,
            "Lang" => Object::string_literal("sv-SE"),
        };
        if let Some(acroform) = acroform {
            catalog.set("AcroForm", acroform);
        }
        let catalog = self.doc.add_object(catalog);
        let info = self.doc.add_object(dictionary! {
            "Producer" => Object::string_literal("tjid-intake"),
        });
        self.doc.trailer.set("Root", catalog);
        self.doc.trailer.set("Info", info);
        self.doc.compress();
        let mut out = Vec::new();
        self.doc.save_to(&mut out)?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Content streams.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    /// The resource name, also used in `/DA` and `/DR`.
    fn resource(self) -> &'static str {
        match self {
            Font::Regular => "Helv",
            Font::Bold => "HeBo",
        }
    }

    /// Width of a WinAnsi byte in thousandths of the font size.
    fn width(self, byte: u8) -> u16 {
        let table = match self {
            Font::Regular => &HELVETICA_WIDTHS,
            Font::Bold => &HELVETICA_BOLD_WIDTHS,
        };
        if byte < 32 {
            0
        } else {
            table[usize::from(byte - 32)]
        }
    }
}

#[derive(Default)]
struct Canvas {
    ops: Vec<u8>,
}

impl Canvas {
    fn raw(&mut self, ops: &str) {
        self.ops.extend_from_slice(ops.as_bytes());
    }

    /// `s` on one line, its baseline starting at (`x`, `y`).
    fn text(&mut self, font: Font, size: f32, x: f32, y: f32, s: &str) {
        self.raw(&format!(
            "BT /{} {} Tf {} {} Td (",
            font.resource(),
            num(size),
            num(x),
            num(y)
        ));
        for b in win_ansi(s) {
            if matches!(b, b'(' | b')' | b'\\') {
                self.ops.push(b'\\');
            }
            self.ops.push(b);
        }
        self.raw(") Tj ET\n");
    }

    /// `s` ending at `right`.
    fn text_right(&mut self, font: Font, size: f32, right: f32, y: f32, s: &str) {
        self.text(font, size, right - text_width(font, size, s), y, s);
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, line_width: f32) {
        self.raw(&format!(
            "{} w {} {} {} {} re S\n",
            num(line_width),
            num(x),
            num(y),
            num(w),
            num(h)
        ));
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, line_width: f32) {
        self.raw(&format!(
            "{} w {} {} m {} {} l S\n",
            num(line_width),
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        ));
    }

    /// Clips what follows, until [`Canvas::end_clip`], to a rectangle (a value too long for
    /// its box even in the smallest font is cut off at the box).
    fn clip(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.raw(&format!(
            "q {} {} {} {} re W n\n",
            num(x),
            num(y),
            num(w),
            num(h)
        ));
    }

    fn end_clip(&mut self) {
        self.raw("Q\n");
    }

    /// A thin grey line (the writing line of a Legacy field).
    fn gray_line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.raw("q 0.55 G\n");
        self.line(x1, y1, x2, y2, 0.6);
        self.raw("Q\n");
    }

    /// A bold X filling most of the square of side `size` at (`x`, `y`).
    fn cross(&mut self, x: f32, y: f32, size: f32) {
        let (a, b) = (size * 0.22, size * 0.78);
        self.raw(&format!("q 1 J {} w\n", num(size * 0.13)));
        self.raw(&format!(
            "{} {} m {} {} l S\n",
            num(x + a),
            num(y + a),
            num(x + b),
            num(y + b)
        ));
        self.raw(&format!(
            "{} {} m {} {} l S\nQ\n",
            num(x + a),
            num(y + b),
            num(x + b),
            num(y + a)
        ));
    }
}

/// A number for a content stream: at most two decimals, no trailing zeros.
fn num(v: f32) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `s` with line breaks and tabs turned into spaces (a field prints on one line).
fn single_line(s: &str) -> String {
    s.chars()
        .map(|ch| if ch.is_whitespace() { ' ' } else { ch })
        .collect()
}

/// `s` in WinAnsiEncoding (Windows-1252): whitespace becomes a space, anything else that the
/// encoding lacks becomes `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| match ch {
            ' '..='~' => ch as u8,
            '\u{a0}'..='\u{ff}' => ch as u32 as u8,
            _ if ch.is_whitespace() => b' ',
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            '\u{2010}' | '\u{2011}' | '\u{2212}' => b'-',
            _ => b'?',
        })
        .collect()
}

fn text_width(font: Font, size: f32, s: &str) -> f32 {
    let units: u32 = win_ansi(s)
        .into_iter()
        .map(|b| u32::from(font.width(b)))
        .sum();
    units as f32 * size / 1000.0
}

/// `size`, or a smaller one (not below `min`) at which `s` fits `width`.
fn fit_size(font: Font, s: &str, width: f32, size: f32, min: f32) -> f32 {
    let w = text_width(font, size, s);
    if w <= width {
        size
    } else {
        (size * width / w).max(min)
    }
}

/// `line` broken at spaces into lines that fit `width` (a word longer than that stays whole).
fn wrap(line: &str, font: Font, size: f32, width: f32) -> Vec<String> {
    let line = single_line(line);
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if !current.is_empty() && text_width(font, size, &candidate) > width {
            out.push(std::mem::take(&mut current));
            current = word.to_string();
        } else {
            current = candidate;
        }
    }
    out.push(current);
    out
}

// Glyph widths of WinAnsi bytes 32..=255 (units of 1/1000 em), from Adobe's Core 14 AFM files
// (Helvetica.afm, Helvetica-Bold.afm); 0 for the bytes that the encoding leaves undefined.
const HELVETICA_WIDTHS: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
    0, 556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, 0, 222, 222,
    333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667, 278, 333, 556, 556, 556, 556,
    260, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333, 333, 556, 537, 278, 333,
    333, 365, 556, 834, 834, 834, 611, 667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667,
    278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667,
    611, 556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

const HELVETICA_BOLD_WIDTHS: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
    0, 556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, 0, 278, 278,
    500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667, 278, 333, 556, 556, 556, 556,
    280, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333, 333, 611, 556, 278, 333,
    333, 365, 556, 834, 834, 834, 611, 722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667,
    278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667,
    611, 556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278, 611, 611,
    611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

#[cfg(test)]
mod tests {
    //! The PDFs are checked with independent tools when they are installed: `qpdf --check`,
    //! `pdftotext -layout` (poppler-utils) and Python's pypdf (interpreter from `$PYPDF_PYTHON`,
    //! else `python3`); a check whose tool is missing is skipped with a note on stderr. The
    //! samples are written to `$PDF_WRITER_OUT` (else a temp directory): the blank forms and the
    //! example of each layout as `TJID-10x-<Layout>.pdf`, the other cases under `extra/`.
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const LAYOUTS: [Layout; 5] = [
        Layout::Fillable,
        Layout::SameLine,
        Layout::SameLineTwoPages,
        Layout::Table,
        Layout::Legacy,
    ];

    /// Where the samples go: `$PDF_WRITER_OUT`, else a directory in the system's temp dir.
    fn out_dir() -> PathBuf {
        let dir = std::env::var_os("PDF_WRITER_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("tjid-intake-pdf-writer"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn tool(name: &str) -> bool {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Writes a sample to `out/` (the layouts of the example values and the blank forms) or,
    /// for the other cases of the tests, to `out/extra/`.
    fn write(name: &str, pdf: &[u8]) -> PathBuf {
        let dir = if name.starts_with("TJID-") {
            out_dir()
        } else {
            out_dir().join("extra")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, pdf).unwrap();
        path
    }

    fn qpdf_check(path: &Path) {
        if !tool("qpdf") {
            eprintln!("qpdf not installed, not checked: {}", path.display());
            return;
        }
        let out = Command::new("qpdf")
            .arg("--check")
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "qpdf --check {}: {text}",
            path.display()
        );
        assert!(
            !text.contains("WARNING"),
            "qpdf --check {}: {text}",
            path.display()
        );
    }

    /// `pdftotext -layout` of the pages `first..=last` (all when `None`), or `None` without it.
    fn pdftotext(path: &Path, pages: Option<(u32, u32)>) -> Option<String> {
        if !tool("pdftotext") {
            eprintln!(
                "pdftotext not installed, text not checked: {}",
                path.display()
            );
            return None;
        }
        let mut cmd = Command::new("pdftotext");
        cmd.arg("-layout").arg("-enc").arg("UTF-8");
        if let Some((f, l)) = pages {
            cmd.args(["-f", &f.to_string(), "-l", &l.to_string()]);
        }
        let out = cmd.arg(path).arg("-").output().unwrap();
        assert!(out.status.success(), "pdftotext {}", path.display());
        Some(String::from_utf8(out.stdout).unwrap())
    }

    fn collapse(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn file_name(kind: FormKind, layout: Layout) -> String {
        format!("{}-{:?}.pdf", kind.form_id(), layout)
    }

    /// The text a value shows as in a text layout (choices: the option texts with their marks).
    fn expected_value_texts(f: &FieldSpec, v: &str, layout: Layout) -> Vec<String> {
        match f.field_type {
            FieldType::Text => vec![v.to_string()],
            FieldType::Choice(options) => {
                let (marked, _) = chosen(options, Some(v));
                match layout {
                    Layout::SameLine | Layout::SameLineTwoPages => {
                        vec![bracketed_choices(options, &marked)]
                    }
                    _ => options
                        .iter()
                        .zip(&marked)
                        .map(|(o, &m)| {
                            if m {
                                format!("X {}", o.label)
                            } else {
                                o.label.to_string()
                            }
                        })
                        .collect(),
                }
            }
            FieldType::YesNo => match layout {
                Layout::SameLine | Layout::SameLineTwoPages => vec![v.to_string()],
                _ if yes_no(Some(v)) == YesNoValue::Yes => vec!["X".to_string()],
                _ => vec![],
            },
        }
    }

    fn check_text_layout(
        kind: FormKind,
        layout: Layout,
        values: &BTreeMap<String, String>,
        text: &str,
    ) {
        let lines: Vec<String> = text.lines().map(collapse).collect();
        let all = lines.join("\n");
        assert!(
            all.contains(&collapse(kind.title())),
            "{layout:?}: no title in\n{text}"
        );
        assert!(
            all.contains(kind.form_id()),
            "{layout:?}: no form id in\n{text}"
        );
        assert!(
            all.contains(SIGNATURE_LABEL),
            "{layout:?}: no signature box in\n{text}"
        );
        for f in kind.fields() {
            let label = if layout == Layout::Legacy {
                f.label.to_uppercase()
            } else {
                f.label.to_string()
            };
            let v = values.get(f.key).map(String::as_str).unwrap_or("");
            let expected = expected_value_texts(f, v, layout);
            match layout {
                Layout::SameLine | Layout::SameLineTwoPages => {
                    let line = format!("{}: {}", label, expected[0]);
                    assert!(
                        lines.iter().any(|l| *l == collapse(&line)),
                        "{layout:?}: no line `{line}` in\n{text}"
                    );
                }
                Layout::Legacy => {
                    let line = lines
                        .iter()
                        .find(|l| **l == label || l.starts_with(&format!("{label} ")))
                        .unwrap_or_else(|| panic!("{layout:?}: no line for {label} in\n{text}"));
                    for e in &expected {
                        assert!(
                            line.contains(&collapse(e)),
                            "{layout:?}: `{e}` not on line `{line}`"
                        );
                    }
                    // The label and the value are apart by a clear gap.
                    let raw = text.lines().find(|l| collapse(l) == *line).unwrap();
                    if let Some(e) = expected.first().filter(|e| !e.is_empty()) {
                        let gap = &raw[raw.find(&label).unwrap() + label.len()..];
                        assert!(
                            gap.starts_with("   "),
                            "{layout:?}: no gap after {label} in `{raw}` ({e})"
                        );
                    }
                }
                Layout::Table => {
                    // The label, and on the next non-empty line, the value.
                    let i = lines
                        .iter()
                        .position(|l| l.contains(&label))
                        .unwrap_or_else(|| panic!("Table: no label {label} in\n{text}"));
                    let next = lines[i + 1..].iter().find(|l| !l.is_empty()).unwrap();
                    for e in &expected {
                        assert!(
                            next.contains(&collapse(e)),
                            "Table: `{e}` not below {label}: `{next}`\n{text}"
                        );
                    }
                }
                Layout::Fillable => {
                    assert!(
                        all.contains(&label),
                        "Fillable: no label {label} in\n{text}"
                    )
                }
            }
        }
    }

    fn python() -> Option<String> {
        let python = std::env::var("PYPDF_PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = Command::new(&python)
            .args(["-c", "import pypdf"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("pypdf not available, AcroForm not read back");
        }
        ok.then_some(python)
    }

    const READ_FIELDS: &str = r#"
import json, sys
from pypdf import PdfReader
r = PdfReader(sys.argv[1])
out = {"fields": {}, "kids": {}}
for name, f in (r.get_fields() or {}).items():
    v = f.get("/V")
    out["fields"][name] = {"ft": str(f.get("/FT")), "v": None if v is None else str(v)}
for page in r.pages:
    for a in page.get("/Annots") or []:
        a = a.get_object()
        if "/Parent" in a:
            p = a["/Parent"].get_object()
            states = [str(k) for k in a["/AP"]["/N"].keys() if k != "/Off"]
            out["kids"].setdefault(str(p["/T"]), []).append([states[0], str(a.get("/AS"))])
print(json.dumps(out))
"#;

    fn read_fields(path: &Path) -> Option<serde_json::Value> {
        let python = python()?;
        let out = Command::new(python)
            .args(["-c", READ_FIELDS])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pypdf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn check_acroform(kind: FormKind, values: &BTreeMap<String, String>, path: &Path) {
        let Some(read) = read_fields(path) else {
            return;
        };
        let fields = read["fields"].as_object().unwrap();
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort();
        let mut expected: Vec<&str> = kind.fields().iter().map(|f| f.key).collect();
        expected.extend([FORM_ID_FIELD, SIGNATURE_FIELD]);
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(fields[FORM_ID_FIELD]["v"], kind.form_id());
        assert_eq!(fields[SIGNATURE_FIELD]["ft"], "/Sig");
        for f in kind.fields() {
            let v = values
                .get(f.key)
                .map(String::as_str)
                .filter(|v| !v.is_empty());
            let got = &fields[f.key];
            match f.field_type {
                FieldType::Text => {
                    assert_eq!(got["ft"], "/Tx");
                    assert_eq!(got["v"].as_str(), v, "{}", f.key);
                }
                FieldType::Choice(options) => {
                    assert_eq!(got["ft"], "/Btn");
                    let (marked, _) = chosen(options, v);
                    let first = options
                        .iter()
                        .zip(&marked)
                        .find(|(_, &m)| m)
                        .map(|(o, _)| format!("/{}", o.export));
                    assert_eq!(got["v"].as_str(), first.as_deref(), "{}", f.key);
                    let kids = read["kids"][f.key].as_array().unwrap();
                    assert_eq!(kids.len(), options.len());
                    for ((o, &m), kid) in options.iter().zip(&marked).zip(kids) {
                        assert_eq!(kid[0], format!("/{}", o.export));
                        assert_eq!(
                            kid[1],
                            if m {
                                format!("/{}", o.export)
                            } else {
                                "/Off".into()
                            },
                            "{}",
                            f.key
                        );
                    }
                }
                FieldType::YesNo => {
                    assert_eq!(got["ft"], "/Btn");
                    let want = match yes_no(v) {
                        YesNoValue::Yes => Some("/Ja"),
                        YesNoValue::No => Some("/Off"),
                        _ => None,
                    };
                    assert_eq!(got["v"].as_str(), want, "{}", f.key);
                }
            }
        }
    }

    fn check(
        kind: FormKind,
        layout: Layout,
        values: &BTreeMap<String, String>,
        name: &str,
    ) -> PathBuf {
        let pdf = render(&[FilledForm {
            kind,
            layout,
            values,
        }])
        .unwrap();
        let path = write(name, &pdf);
        qpdf_check(&path);
        if let Some(text) = pdftotext(&path, None) {
            check_text_layout(kind, layout, values, &text);
        }
        if layout == Layout::Fillable {
            check_acroform(kind, values, &path);
        }
        path
    }

    #[test]
    fn every_layout_of_both_forms_renders_and_reads_back() {
        for kind in FormKind::ALL {
            let values = example_values(kind);
            for layout in LAYOUTS {
                check(kind, layout, &values, &file_name(kind, layout));
            }
        }
    }

    #[test]
    fn blank_forms_are_fillable_with_the_form_id() {
        for kind in FormKind::ALL {
            let path = write(&format!("{}-blank.pdf", kind.form_id()), &blank_form(kind));
            qpdf_check(&path);
            if let Some(text) = pdftotext(&path, None) {
                check_text_layout(kind, Layout::Fillable, &BTreeMap::new(), &text);
                assert!(text.contains(INSTRUCTION.split('.').next().unwrap()));
            }
            check_acroform(kind, &BTreeMap::new(), &path);
        }
    }

    #[test]
    fn broken_values_are_printed_as_given() {
        let mut values = example_values(FormKind::Order);
        values.insert("bestallningstyp".into(), "Nytt,Ersattning".into());
        values.insert("utlamning".into(), String::new());
        values.insert("personnummer".into(), "19121212-1213".into());
        values.insert("mobil".into(), String::new());
        values.insert("datum".into(), "31/2 2026 (ogiltigt) \\ x".into());
        for layout in LAYOUTS {
            check(
                FormKind::Order,
                layout,
                &values,
                &format!("broken-{:?}.pdf", layout),
            );
        }
        let mut values = example_values(FormKind::Deregistration);
        values.insert("klippt_kort".into(), NO.into());
        values.insert("kortnummer".into(), "9752 2679".into());
        for layout in LAYOUTS {
            check(
                FormKind::Deregistration,
                layout,
                &values,
                &format!("broken-dereg-{:?}.pdf", layout),
            );
        }
    }

    #[test]
    fn both_options_marked_in_a_fillable_form() {
        let mut values = example_values(FormKind::Order);
        values.insert("bestallningstyp".into(), "Nytt,Fornyelse".into());
        let path = check(
            FormKind::Order,
            Layout::Fillable,
            &values,
            "both-marked-Fillable.pdf",
        );
        if let Some(read) = read_fields(&path) {
            let states: Vec<&str> = read["kids"]["bestallningstyp"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k[1].as_str().unwrap())
                .collect();
            assert_eq!(states, ["/Nytt", "/Off", "/Fornyelse"]);
        }
    }

    #[test]
    fn missing_cut_card_line_is_left_out() {
        let mut values = example_values(FormKind::Deregistration);
        values.remove("klippt_kort");
        let label = FormKind::Deregistration.field("klippt_kort").unwrap().label;
        for layout in [
            Layout::SameLine,
            Layout::Legacy,
            Layout::Table,
            Layout::Fillable,
        ] {
            let pdf = render(&[FilledForm {
                kind: FormKind::Deregistration,
                layout,
                values: &values,
            }])
            .unwrap();
            let path = write(&format!("no-cut-card-{layout:?}.pdf"), &pdf);
            qpdf_check(&path);
            let Some(text) = pdftotext(&path, None) else {
                continue;
            };
            let has = text.to_lowercase().contains(&label.to_lowercase());
            assert_eq!(
                has,
                matches!(layout, Layout::Table | Layout::Fillable),
                "{layout:?}:\n{text}"
            );
            if layout == Layout::Fillable {
                check_acroform(FormKind::Deregistration, &values, &path);
            }
        }
    }

    #[test]
    fn characters_outside_win_ansi_are_replaced() {
        let mut values = example_values(FormKind::Order);
        values.insert("efternamn".into(), "Łukasiewicz 🚀 Øre\tÉn".into());
        values.insert(
            "befattning".into(),
            "Läkare (ST) – ”allmänmedicin” € \\".into(),
        );
        values.insert("vardgivare_namn".into(), "X".repeat(300));
        for layout in LAYOUTS {
            let pdf = render(&[FilledForm {
                kind: FormKind::Order,
                layout,
                values: &values,
            }])
            .unwrap();
            let path = write(&format!("charset-{layout:?}.pdf"), &pdf);
            qpdf_check(&path);
            if layout == Layout::Fillable {
                check_acroform(FormKind::Order, &values, &path);
                continue;
            }
            let Some(text) = pdftotext(&path, None) else {
                continue;
            };
            assert!(text.contains("?ukasiewicz ? Øre Én"), "{layout:?}:\n{text}");
            assert!(
                text.contains("Läkare (ST) – ”allmänmedicin” € \\"),
                "{layout:?}:\n{text}"
            );
        }
        assert_eq!(
            win_ansi("åäöÅÄÖé·"),
            [0xe5, 0xe4, 0xf6, 0xc5, 0xc4, 0xd6, 0xe9, 0xb7]
        );
    }

    #[test]
    fn continuation_page_has_no_title() {
        for kind in FormKind::ALL {
            let values = example_values(kind);
            let pdf = render(&[FilledForm {
                kind,
                layout: Layout::SameLineTwoPages,
                values: &values,
            }])
            .unwrap();
            let path = write(&format!("two-pages-{}.pdf", kind.form_id()), &pdf);
            let doc = Document::load_mem(&pdf).unwrap();
            assert_eq!(doc.get_pages().len(), 2);
            let (Some(p1), Some(p2)) = (
                pdftotext(&path, Some((1, 1))),
                pdftotext(&path, Some((2, 2))),
            ) else {
                continue;
            };
            assert!(p1.contains(kind.title()) && p1.contains("Sida 1 av 2"));
            assert!(
                !p2.contains(kind.title())
                    && !p2.contains(kind.form_id())
                    && p2.contains("Sida 2 av 2")
            );
            assert!(p2.contains("Verksamhetschef: ") && !p1.contains("Verksamhetschef"));
            assert!(p2.contains(SIGNATURE_LABEL) && !p1.contains(SIGNATURE_LABEL));
        }
    }

    #[test]
    fn several_forms_in_one_document() {
        let order = example_values(FormKind::Order);
        let dereg = example_values(FormKind::Deregistration);
        let forms = [
            FilledForm {
                kind: FormKind::Order,
                layout: Layout::SameLine,
                values: &order,
            },
            FilledForm {
                kind: FormKind::Deregistration,
                layout: Layout::Table,
                values: &dereg,
            },
            FilledForm {
                kind: FormKind::Order,
                layout: Layout::SameLineTwoPages,
                values: &order,
            },
            FilledForm {
                kind: FormKind::Deregistration,
                layout: Layout::Legacy,
                values: &dereg,
            },
        ];
        let pdf = render(&forms).unwrap();
        let path = write("several-forms.pdf", &pdf);
        qpdf_check(&path);
        assert_eq!(Document::load_mem(&pdf).unwrap().get_pages().len(), 5);
        if let Some(text) = pdftotext(&path, None) {
            let titles: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    l.starts_with(FormKind::Order.title())
                        || l.starts_with(FormKind::Deregistration.title())
                })
                .collect();
            assert_eq!(titles.len(), 4, "{titles:?}");
        }
    }

    #[test]
    fn refused_documents() {
        let values = example_values(FormKind::Order);
        let fillable = FilledForm {
            kind: FormKind::Order,
            layout: Layout::Fillable,
            values: &values,
        };
        let table = FilledForm {
            kind: FormKind::Order,
            layout: Layout::Table,
            values: &values,
        };
        assert!(matches!(
            render(&[fillable, table]),
            Err(WriteError::FillableNotAlone { count: 2 })
        ));
        assert!(matches!(render(&[]), Err(WriteError::NoForms)));
        let dereg = FilledForm {
            kind: FormKind::Deregistration,
            layout: Layout::Table,
            values: &values,
        };
        assert!(matches!(
            render(&[dereg]),
            Err(WriteError::UnknownField { .. })
        ));
    }

    #[test]
    fn text_page_has_no_form() {
        let long = "Hej! Här kommer en beställning av eTjänstekort för vår nya medarbetare, se bifogad blankett. ".repeat(4);
        let lines = [
            "Faktura 2026-0042",
            "",
            "Vårdcentralen Ekmansgatan",
            long.as_str(),
            "Belopp: 1 250 kr",
        ];
        let pdf = render_text_page(&lines);
        let path = write("text-page.pdf", &pdf);
        qpdf_check(&path);
        assert_eq!(Document::load_mem(&pdf).unwrap().get_pages().len(), 1);
        if let Some(text) = pdftotext(&path, None) {
            assert!(text.contains("Faktura 2026-0042") && text.contains("Belopp: 1 250 kr"));
            assert!(!text.contains("TJID-10"));
        }
        let many: Vec<String> = (0..120).map(|i| format!("Rad {i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let path = write("text-page-long.pdf", &render_text_page(&many));
        if let Some(text) = pdftotext(&path, None) {
            assert!(text.contains("Rad 119"));
        }
    }

    #[test]
    fn example_values_fill_every_field() {
        for kind in FormKind::ALL {
            let values = example_values(kind);
            assert_eq!(values.len(), kind.fields().len());
            for f in kind.fields() {
                let v = &values[f.key];
                assert!(!v.is_empty(), "{}", f.key);
                if let FieldType::Choice(options) = f.field_type {
                    assert_eq!(chosen(options, Some(v)).0.iter().filter(|&&m| m).count(), 1);
                }
            }
        }
        let card: Vec<u32> = example_values(FormKind::Deregistration)["kortnummer"]
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        assert_eq!(card.len(), 19);
        assert_eq!(card[..4], [9, 7, 5, 2]);
        let luhn: u32 = card
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 1 {
                    if d * 2 > 9 {
                        d * 2 - 9
                    } else {
                        d * 2
                    }
                } else {
                    d
                }
            })
            .sum();
        assert_eq!(luhn % 10, 0);
    }

    #[test]
    fn legacy_order_puts_the_person_first() {
        let keys: Vec<&str> = legacy_order(ORDER_FIELDS).iter().map(|f| f.key).collect();
        assert_eq!(
            keys[0],
            ORDER_FIELDS
                .iter()
                .find(|f| f.label == "Förnamn")
                .unwrap()
                .key
        );
        let unit = keys
            .iter()
            .position(|k| k.starts_with("vardenhet_"))
            .unwrap();
        let provider = keys
            .iter()
            .position(|k| k.starts_with("vardgivare_"))
            .unwrap();
        let choice = keys.iter().position(|k| {
            ORDER_FIELDS
                .iter()
                .any(|f| f.key == *k && f.field_type != FieldType::Text)
        });
        assert!(unit < provider && provider < choice.unwrap());
        assert_eq!(keys.len(), ORDER_FIELDS.len());
    }
}
