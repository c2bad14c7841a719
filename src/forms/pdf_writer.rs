//! Writes the office's own forms TJID-101 ("Beställning av eTjänstekort") and TJID-102
//! ("Avregistrering av eTjänstekort") as the fillable PDF that care providers download (SPEC §2,
//! `forms write`, `/blanketter`): an A4 AcroForm with one widget per field (text boxes, radio
//! groups, a checkbox, a hidden read-only `blankett` field and a signature field `underskrift`).
//!
//! Names, labels and choice options come from [`super::spec`]; nothing here repeats them. The
//! pages are drawn with [`draw`], which the test kit's printed layouts (the ways providers are
//! known to send a filled form: `testkit/src/pdf_writer.rs`) share.

pub mod draw;

use std::collections::BTreeMap;

use lopdf::{dictionary, Dictionary, Object, ObjectId, StringFormat};

use super::spec::*;
use draw::*;

/// The blank fillable form of `kind` (only the hidden field `blankett` is filled).
pub fn blank_form(kind: FormKind) -> Vec<u8> {
    fillable_form(kind, &BTreeMap::new())
}

/// The fillable form of `kind` with `values` (by field key) filled in, as a PDF viewer would
/// save it. Text fields hold their value as given; a choice holds the comma-separated export
/// values (or labels) to mark; `klippt_kort` holds `Ja`, `Nej` or nothing (no `/V`). The key
/// `blankett` overrides the value of the hidden form-id field (default: the form id). Keys that
/// are not fields of `kind` are not printed.
pub fn fillable_form(kind: FormKind, values: &BTreeMap<String, String>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let acroform = fillable(&mut pdf, kind, values);
    pdf.finish(Some(acroform))
}

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

    // The signature box, with an (unsigned) signature field over it; signed by hand (a drawn
    // stroke) when the values ask for it.
    draw_signature_box(&mut c);
    sign_box(&mut c, values);
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
pub const SIGNATURE_FIELD: &str = "underskrift";
