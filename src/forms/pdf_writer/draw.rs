//! Drawing PDF pages with the standard fonts: the document, content streams, text metrics and
//! the parts every layout of the office's forms shares (title block, signature box, which
//! options a field's value marks). The fillable form (`super`) is drawn with it, and so are the
//! printed layouts of the test kit (`testkit/src/pdf_writer.rs`).
//!
//! Text is set in Helvetica and Helvetica-Bold with `WinAnsiEncoding`, so no font is embedded;
//! characters outside WinAnsi are printed as `?`.

use std::collections::BTreeMap;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream};

use crate::forms::spec::*;

// ---------------------------------------------------------------------------------------------
// Page geometry and the printed texts common to all layouts.

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
pub const MARGIN_LEFT: f32 = 50.0;
pub const MARGIN_RIGHT: f32 = 545.0;
pub const CONTENT_WIDTH: f32 = MARGIN_RIGHT - MARGIN_LEFT;
/// Where the fields start on a page with a title.
pub const FIELDS_TOP: f32 = 722.0;
/// The signature box (all layouts but the test kit's Table, which has it as a cell).
pub(super) const SIGNATURE_BOX: (f32, f32, f32, f32) = (MARGIN_LEFT, 70.0, 247.5, 60.0);

const HEADER: &str = "Västra Götalandsregionen · TjänsteID-service";
pub const INSTRUCTION: &str =
    "Fyll i alla fält. Skriv under och skicka blanketten som bilaga till tjansteid@vgregion.se.";

/// Header line, form id at the top right, the title in bold and the instruction line.
pub fn draw_title_block(c: &mut Canvas, kind: FormKind, title: &str) {
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 806.0, HEADER);
    c.text_right(Font::Bold, 12.0, MARGIN_RIGHT, 806.0, kind.form_id());
    c.line(MARGIN_LEFT, 798.0, MARGIN_RIGHT, 798.0, 0.8);
    let size = fit_size(Font::Bold, title, CONTENT_WIDTH, 18.0, 10.0);
    c.text(Font::Bold, size, MARGIN_LEFT, 768.0, title);
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 748.0, INSTRUCTION);
}

/// The header of a continuation page: no title, no form id (the page number is in the footer).
pub fn draw_continuation_header(c: &mut Canvas) {
    c.text(Font::Regular, 9.0, MARGIN_LEFT, 806.0, HEADER);
    c.line(MARGIN_LEFT, 798.0, MARGIN_RIGHT, 798.0, 0.8);
}

/// The box for the signature, labelled above it.
pub fn draw_signature_box(c: &mut Canvas) {
    let (x, y, w, h) = SIGNATURE_BOX;
    c.text(Font::Regular, 8.5, x, y + h + 4.0, SIGNATURE_LABEL);
    c.rect(x, y, w, h, 1.0);
}

/// Signs the signature box with a drawn, hand-like stroke when `values` holds the signature
/// key (the test kit's filled forms and the `forms write` examples; a real provider signs by hand
/// or digitally).
pub fn sign_box(c: &mut Canvas, values: &BTreeMap<String, String>) {
    if values.contains_key(crate::forms::spec::SIGNATURE_KEY) {
        let (x, y, w, h) = SIGNATURE_BOX;
        draw_signature(c, x, y, w, h);
    }
}

/// A hand-like signature: connected curves and a slanted flourish inside (`x`, `y`, `w`, `h`).
pub fn draw_signature(c: &mut Canvas, x: f32, y: f32, w: f32, h: f32) {
    let p = |fx: f32, fy: f32| format!("{} {}", num(x + w * fx), num(y + h * fy));
    c.raw(&format!(
        "q 0.08 0.1 0.4 RG 1.3 w 1 J 1 j {} m {} {} {} c {} {} {} c {} {} {} c {} l S Q\n",
        p(0.10, 0.35),
        p(0.18, 0.85),
        p(0.26, 0.10),
        p(0.34, 0.55),
        p(0.42, 0.95),
        p(0.50, 0.15),
        p(0.58, 0.50),
        p(0.66, 0.80),
        p(0.74, 0.20),
        p(0.82, 0.45),
        p(0.90, 0.62),
    ));
}

// ---------------------------------------------------------------------------------------------
// Field values.

pub fn value<'v>(values: &'v BTreeMap<String, String>, key: &str) -> Option<&'v str> {
    values.get(key).map(String::as_str)
}

/// Which options of a choice are marked, and the tokens that name no option.
pub fn chosen<'v>(options: &[ChoiceOption], value: Option<&'v str>) -> (Vec<bool>, Vec<&'v str>) {
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
pub enum YesNoValue<'v> {
    Absent,
    Empty,
    Yes,
    No,
    Other(&'v str),
}

pub fn yes_no(value: Option<&str>) -> YesNoValue<'_> {
    match value {
        None => YesNoValue::Absent,
        Some(v) if v.trim().is_empty() => YesNoValue::Empty,
        Some(v) if v.trim().eq_ignore_ascii_case(YES) => YesNoValue::Yes,
        Some(v) if v.trim().eq_ignore_ascii_case(NO) => YesNoValue::No,
        Some(v) => YesNoValue::Other(v),
    }
}

// ---------------------------------------------------------------------------------------------
// The document.

pub struct Pdf {
    pub(super) doc: Document,
    pages_id: ObjectId,
    helvetica: ObjectId,
    helvetica_bold: ObjectId,
    zapf_dingbats: ObjectId,
    pages: Vec<ObjectId>,
}

impl Default for Pdf {
    fn default() -> Pdf {
        Pdf::new()
    }
}

impl Pdf {
    pub fn new() -> Pdf {
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

    pub(super) fn font_resources(&self) -> Dictionary {
        dictionary! {
            Font::Regular.resource() => self.helvetica,
            Font::Bold.resource() => self.helvetica_bold,
            "ZaDb" => self.zapf_dingbats,
        }
    }

    /// Adds a page holding `content` and no annotations.
    pub fn push_page(&mut self, content: Canvas) {
        let page = self.doc.new_object_id();
        self.add_page(page, content, Vec::new());
    }

    pub(super) fn add_page(&mut self, page: ObjectId, content: Canvas, annots: Vec<Object>) {
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
    pub(super) fn form_xobject(&mut self, w: f32, h: f32, content: Canvas) -> ObjectId {
        let dict = dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), w.into(), h.into()],
            "Resources" => dictionary! { "Font" => self.font_resources() },
        };
        self.doc.add_object(Stream::new(dict, content.ops))
    }

    /// The document as bytes, with `acroform` (the fillable form's dictionary) in its catalog.
    pub fn finish(mut self, acroform: Option<ObjectId>) -> Vec<u8> {
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
        self.doc
            .save_to(&mut out)
            .expect("writing a PDF to memory does not fail");
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Content streams.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Regular,
    Bold,
}

impl Font {
    /// The resource name, also used in `/DA` and `/DR`.
    pub(super) fn resource(self) -> &'static str {
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
pub struct Canvas {
    ops: Vec<u8>,
}

impl Canvas {
    pub(super) fn raw(&mut self, ops: &str) {
        self.ops.extend_from_slice(ops.as_bytes());
    }

    /// `s` on one line, its baseline starting at (`x`, `y`).
    pub fn text(&mut self, font: Font, size: f32, x: f32, y: f32, s: &str) {
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
    pub fn text_right(&mut self, font: Font, size: f32, right: f32, y: f32, s: &str) {
        self.text(font, size, right - text_width(font, size, s), y, s);
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, line_width: f32) {
        self.raw(&format!(
            "{} w {} {} {} {} re S\n",
            num(line_width),
            num(x),
            num(y),
            num(w),
            num(h)
        ));
    }

    pub fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, line_width: f32) {
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
    pub fn clip(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.raw(&format!(
            "q {} {} {} {} re W n\n",
            num(x),
            num(y),
            num(w),
            num(h)
        ));
    }

    pub fn end_clip(&mut self) {
        self.raw("Q\n");
    }

    /// A thin grey line (the writing line of a Legacy field).
    pub fn gray_line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.raw("q 0.55 G\n");
        self.line(x1, y1, x2, y2, 0.6);
        self.raw("Q\n");
    }

    /// A bold X filling most of the square of side `size` at (`x`, `y`).
    pub(super) fn cross(&mut self, x: f32, y: f32, size: f32) {
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
pub(super) fn num(v: f32) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `s` with line breaks and tabs turned into spaces (a field prints on one line).
pub fn single_line(s: &str) -> String {
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

pub fn text_width(font: Font, size: f32, s: &str) -> f32 {
    let units: u32 = win_ansi(s)
        .into_iter()
        .map(|b| u32::from(font.width(b)))
        .sum();
    units as f32 * size / 1000.0
}

/// `size`, or a smaller one (not below `min`) at which `s` fits `width`.
pub fn fit_size(font: Font, s: &str, width: f32, size: f32, min: f32) -> f32 {
    let w = text_width(font, size, s);
    if w <= width {
        size
    } else {
        (size * width / w).max(min)
    }
}

/// `line` broken at spaces into lines that fit `width` (a word longer than that stays whole).
pub fn wrap(line: &str, font: Font, size: f32, width: f32) -> Vec<String> {
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
    use super::*;

    #[test]
    fn characters_outside_win_ansi_are_replaced() {
        assert_eq!(
            win_ansi("åäöÅÄÖé·"),
            [0xe5, 0xe4, 0xf6, 0xc5, 0xc4, 0xd6, 0xe9, 0xb7]
        );
        assert_eq!(win_ansi("Ł🚀\t–€\u{2212}"), b"?? \x96\x80-");
    }
}
