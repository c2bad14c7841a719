//! Font handling for text extraction: code splitting, code -> Unicode and
//! glyph widths for simple fonts (Type1, TrueType, Type3) and Type0 fonts.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Object};

use super::cmap::{parse_cmap, CMap};
use super::tables;

/// Budget for decompressing one font-related stream (ToUnicode, CMap).
const FONT_STREAM_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std14 {
    Helvetica,
    HelveticaBold,
    TimesRoman,
    TimesBold,
    Courier,
    Symbol,
    ZapfDingbats,
}

/// One decoded code of a shown string.
pub(super) struct GlyphCode<'a> {
    /// Unicode text (may be empty when the code has no known mapping).
    pub text: &'a str,
    /// Horizontal advance in text space for a font size of 1.
    pub width: f32,
    /// The code is the single byte 32 (word spacing applies).
    pub is_space_byte: bool,
}

#[derive(Debug)]
pub(super) struct Font {
    composite: bool,
    /// Simple fonts: code -> char ('\0' = unknown).
    chars: Box<[char; 256]>,
    /// Simple fonts: code -> width (text space units per unit font size).
    widths: Box<[f32; 256]>,
    to_unicode: Option<CMap>,
    /// Composite fonts: codespace from the encoding CMap (empty = 2-byte codes).
    encoding_cmap: Option<CMap>,
    /// Composite fonts: codes are UCS-2/UTF-16 values (predefined Uni*-UCS2/UTF16 CMaps).
    unicode_codes: bool,
    cid_widths: HashMap<u32, f32>,
    cid_width_ranges: Vec<(u32, u32, f32)>,
    default_width: f32,
    /// Wingdings-style symbol font: map PUA/codes to box and check characters.
    wingdings: bool,
}

impl Font {
    /// A stand-in when a text operator runs with no (or an unreadable) font.
    pub fn fallback() -> Font {
        let mut chars = Box::new(['\0'; 256]);
        let mut widths = Box::new([0.5f32; 256]);
        for c in 0..256usize {
            chars[c] = char::from_u32(tables::WIN_ANSI[c] as u32).unwrap_or('\0');
            widths[c] = std_width(Std14::Helvetica, chars[c]).unwrap_or(0.5);
        }
        Font {
            composite: false,
            chars,
            widths,
            to_unicode: None,
            encoding_cmap: None,
            unicode_codes: false,
            cid_widths: HashMap::new(),
            cid_width_ranges: Vec::new(),
            default_width: 0.5,
            wingdings: false,
        }
    }

    pub fn load(doc: &Document, dict: &Dictionary) -> Font {
        let subtype = name_of(doc, dict.get(b"Subtype").ok()).unwrap_or_default();
        if subtype == b"Type0" {
            Self::load_composite(doc, dict)
        } else {
            Self::load_simple(doc, dict, subtype == b"Type3")
        }
    }

    fn load_simple(doc: &Document, dict: &Dictionary, type3: bool) -> Font {
        let base = name_of(doc, dict.get(b"BaseFont").ok())
            .map(strip_subset)
            .unwrap_or_default();
        let base_str = String::from_utf8_lossy(&base).into_owned();
        let std14 = classify_std14(&base_str);
        let lower = base_str.to_ascii_lowercase();
        let wingdings = lower.contains("wingdings") || lower.contains("webdings");
        let subtype = name_of(doc, dict.get(b"Subtype").ok()).unwrap_or_default();

        // Base encoding: the font's built-in one unless /Encoding says otherwise.
        let mut base_table: &[u16; 256] = match std14 {
            Some(Std14::Symbol) => &tables::SYMBOL,
            Some(Std14::ZapfDingbats) => &tables::ZAPF_DINGBATS,
            _ if subtype == b"TrueType" => &tables::WIN_ANSI,
            _ => &tables::STANDARD,
        };
        let mut differences: Vec<(u8, char)> = Vec::new();
        let mut diff_strings: Vec<(u8, String)> = Vec::new();
        let enc = dict.get(b"Encoding").ok().map(|o| deref(doc, o));
        let set_base = |n: &[u8], t: &mut &[u16; 256]| match n {
            b"WinAnsiEncoding" => *t = &tables::WIN_ANSI,
            b"MacRomanEncoding" => *t = &tables::MAC_ROMAN,
            b"StandardEncoding" => *t = &tables::STANDARD,
            b"PDFDocEncoding" => *t = &tables::PDF_DOC,
            _ => {}
        };
        match enc {
            Some(Object::Name(n)) => set_base(n, &mut base_table),
            Some(Object::Dictionary(ed)) => {
                if let Some(n) = name_of(doc, ed.get(b"BaseEncoding").ok()) {
                    set_base(&n, &mut base_table);
                }
                if let Ok(Object::Array(arr)) = ed.get(b"Differences").map(|o| deref(doc, o)) {
                    let mut code: i64 = -1;
                    for item in arr.iter().take(4096) {
                        match deref(doc, item) {
                            Object::Integer(i) => code = *i,
                            Object::Real(r) => code = *r as i64,
                            Object::Name(n) => {
                                if (0..256).contains(&code) {
                                    if let Some(u) =
                                        std::str::from_utf8(n).ok().and_then(glyph_name_to_unicode)
                                    {
                                        let mut it = u.chars();
                                        match (it.next(), it.next()) {
                                            (Some(c), None) => differences.push((code as u8, c)),
                                            (Some(_), Some(_)) => {
                                                diff_strings.push((code as u8, u))
                                            }
                                            _ => {}
                                        }
                                    }
                                }
                                code += 1;
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }

        let mut chars = Box::new(['\0'; 256]);
        for (c, slot) in chars.iter_mut().enumerate() {
            *slot = char::from_u32(base_table[c] as u32).unwrap_or('\0');
        }
        // An embedded Type1 font without a named base encoding uses the encoding
        // built into its font program (TeX fonts rely on this).
        let named_base = match enc {
            Some(Object::Name(_)) => true,
            Some(Object::Dictionary(ed)) => ed.has(b"BaseEncoding"),
            _ => false,
        };
        if !named_base && !type3 && std14.is_none() {
            if let Some(builtin) = type1_builtin_encoding(doc, dict) {
                for (code, c) in builtin {
                    chars[code as usize] = c;
                }
            }
        }
        for (code, c) in differences {
            chars[code as usize] = c;
        }
        if wingdings {
            for (c, slot) in chars.iter_mut().enumerate() {
                if let Some(w) = wingdings_char(c as u32) {
                    *slot = w;
                }
            }
        }

        let mut to_unicode = load_to_unicode(doc, dict);
        // Ligature glyph names from /Differences go through the ToUnicode map.
        if !diff_strings.is_empty() {
            let tu = to_unicode.get_or_insert_with(CMap::default);
            for (code, s) in diff_strings {
                if tu.lookup(code as u32).is_none() {
                    tu.insert(code as u32, s);
                }
            }
        }

        // Widths.
        let scale = if type3 {
            match dict.get(b"FontMatrix").map(|o| deref(doc, o)) {
                Ok(Object::Array(m)) if !m.is_empty() => {
                    num(doc, &m[0]).filter(|v| v.is_finite()).unwrap_or(0.001)
                }
                _ => 0.001,
            }
        } else {
            0.001
        };
        let descriptor = dict
            .get(b"FontDescriptor")
            .ok()
            .map(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok());
        let missing = descriptor
            .and_then(|d| d.get(b"MissingWidth").ok())
            .and_then(|o| num(doc, o))
            .map(|w| w * scale)
            .filter(|w| *w > 0.0);
        let mut widths = Box::new([f32::NAN; 256]);
        let first = dict
            .get(b"FirstChar")
            .ok()
            .and_then(|o| num(doc, o))
            .unwrap_or(0.0) as i64;
        if let Ok(Object::Array(ws)) = dict.get(b"Widths").map(|o| deref(doc, o)) {
            for (i, w) in ws.iter().enumerate().take(256) {
                let code = first + i as i64;
                if (0..256).contains(&code) {
                    if let Some(w) = num(doc, w).filter(|w| w.is_finite()) {
                        widths[code as usize] = (w * scale).abs().min(100.0);
                    }
                }
            }
        }
        for c in 0..256usize {
            if widths[c].is_nan() {
                widths[c] = match std14 {
                    Some(Std14::Symbol) => tables::SYMBOL_WIDTHS[c] as f32 / 1000.0,
                    Some(Std14::ZapfDingbats) => tables::ZAPF_DINGBATS_WIDTHS[c] as f32 / 1000.0,
                    Some(s) => std_width(s, chars[c]).or(missing).unwrap_or(0.5),
                    None => missing.unwrap_or(0.5),
                };
            }
        }

        Font {
            composite: false,
            chars,
            widths,
            to_unicode,
            encoding_cmap: None,
            unicode_codes: false,
            cid_widths: HashMap::new(),
            cid_width_ranges: Vec::new(),
            default_width: 0.5,
            wingdings,
        }
    }

    fn load_composite(doc: &Document, dict: &Dictionary) -> Font {
        let mut font = Font::fallback();
        font.composite = true;
        font.to_unicode = load_to_unicode(doc, dict);
        match dict.get(b"Encoding").map(|o| deref(doc, o)) {
            Ok(Object::Name(n)) => {
                let n = String::from_utf8_lossy(n);
                font.unicode_codes =
                    n.starts_with("Uni") && (n.contains("UCS2") || n.contains("UTF16"));
            }
            Ok(Object::Stream(s)) => {
                if let Ok(data) = s.get_plain_content_with_limit(FONT_STREAM_LIMIT) {
                    let cm = parse_cmap(&data);
                    if !cm.codespace.is_empty() {
                        font.encoding_cmap = Some(cm);
                    }
                }
            }
            _ => {}
        }
        let desc = match dict.get(b"DescendantFonts").map(|o| deref(doc, o)) {
            Ok(Object::Array(a)) => a
                .first()
                .map(|o| deref(doc, o))
                .and_then(|o| o.as_dict().ok()),
            Ok(Object::Dictionary(d)) => Some(d),
            _ => None,
        };
        font.default_width = 1.0;
        if let Some(desc) = desc {
            if let Some(dw) = desc
                .get(b"DW")
                .ok()
                .and_then(|o| num(doc, o))
                .filter(|w| w.is_finite())
            {
                font.default_width = dw.abs() / 1000.0;
            }
            if let Ok(Object::Array(w)) = desc.get(b"W").map(|o| deref(doc, o)) {
                let mut i = 0;
                let mut budget = 65_536usize;
                while i < w.len() && budget > 0 {
                    let Some(c0) = num(doc, &w[i]) else { break };
                    let c0 = c0.max(0.0) as u32;
                    match w.get(i + 1).map(|o| deref(doc, o)) {
                        Some(Object::Array(list)) => {
                            for (k, v) in list.iter().enumerate() {
                                if budget == 0 {
                                    break;
                                }
                                budget -= 1;
                                if let Some(v) = num(doc, v).filter(|v| v.is_finite()) {
                                    font.cid_widths
                                        .insert(c0.saturating_add(k as u32), v.abs() / 1000.0);
                                }
                            }
                            i += 2;
                        }
                        Some(_) => {
                            let c1 = w
                                .get(i + 1)
                                .and_then(|o| num(doc, o))
                                .unwrap_or(0.0)
                                .max(0.0) as u32;
                            let v = w
                                .get(i + 2)
                                .and_then(|o| num(doc, o))
                                .filter(|v| v.is_finite())
                                .unwrap_or(0.0);
                            budget -= 1;
                            font.cid_width_ranges.push((c0, c1, v.abs() / 1000.0));
                            i += 3;
                        }
                        None => break,
                    }
                }
            }
        }
        font
    }

    /// Decode a shown string into codes, calling `f` for each.
    pub fn for_each_code(&self, bytes: &[u8], mut f: impl FnMut(GlyphCode<'_>)) {
        if !self.composite {
            let mut buf = [0u8; 4];
            for &b in bytes {
                let code = b as u32;
                let width = self.widths[b as usize];
                let is_space_byte = b == 32;
                match self.to_unicode.as_ref().and_then(|tu| tu.lookup(code)) {
                    Some(t) if self.wingdings => {
                        let t: String = t.chars().map(map_wingdings_pua).collect();
                        f(GlyphCode {
                            text: &t,
                            width,
                            is_space_byte,
                        });
                    }
                    Some(t) => f(GlyphCode {
                        text: &t,
                        width,
                        is_space_byte,
                    }),
                    None => {
                        let mut c = self.chars[b as usize];
                        // Unknown code: printable ASCII/Latin-1 as itself.
                        if c == '\0' && ((32..127).contains(&b) || b >= 0xA0) {
                            c = b as char;
                        }
                        let text = if c == '\0' {
                            ""
                        } else {
                            c.encode_utf8(&mut buf)
                        };
                        f(GlyphCode {
                            text,
                            width,
                            is_space_byte,
                        });
                    }
                }
            }
            return;
        }
        let mut i = 0;
        let mut buf = [0u8; 4];
        while i < bytes.len() {
            let rest = &bytes[i..];
            let n = match &self.encoding_cmap {
                Some(cm) => cm.code_len(rest, 2),
                None => 2.min(rest.len()),
            };
            let code = rest[..n].iter().fold(0u32, |a, &b| (a << 8) | b as u32);
            let width = self
                .cid_widths
                .get(&code)
                .copied()
                .or_else(|| {
                    self.cid_width_ranges
                        .iter()
                        .find(|(a, b, _)| code >= *a && code <= *b)
                        .map(|r| r.2)
                })
                .unwrap_or(self.default_width);
            let is_space_byte = n == 1 && code == 32;
            match self.to_unicode.as_ref().and_then(|tu| tu.lookup(code)) {
                Some(t) => f(GlyphCode {
                    text: &t,
                    width,
                    is_space_byte,
                }),
                None => {
                    let text = match char::from_u32(code) {
                        Some(c) if self.unicode_codes => c.encode_utf8(&mut buf),
                        _ => "",
                    };
                    f(GlyphCode {
                        text,
                        width,
                        is_space_byte,
                    });
                }
            }
            i += n;
        }
    }
}

/// The `dup <code> /<glyph> put` entries of an embedded Type1 font program's
/// cleartext part.
fn type1_builtin_encoding(doc: &Document, font: &Dictionary) -> Option<Vec<(u8, char)>> {
    let desc = deref(doc, font.get(b"FontDescriptor").ok()?)
        .as_dict()
        .ok()?;
    let stream = deref(doc, desc.get(b"FontFile").ok()?).as_stream().ok()?;
    let data = stream
        .get_plain_content_with_limit(FONT_STREAM_LIMIT)
        .ok()?;
    let clear_len = stream
        .dict
        .get(b"Length1")
        .ok()
        .and_then(|o| num(doc, o))
        .map(|l| l as usize)
        .unwrap_or(data.len());
    let clear = &data[..clear_len.min(data.len())];
    let clear = match clear.windows(5).position(|w| w == b"eexec") {
        Some(p) => &clear[..p],
        None => clear,
    };
    let enc_pos = clear.windows(9).position(|w| w == b"/Encoding")?;
    let text = String::from_utf8_lossy(&clear[enc_pos..]);
    let toks: Vec<&str> = text.split_ascii_whitespace().take(4096).collect();
    if toks.get(1) == Some(&"StandardEncoding") {
        return None;
    }
    let mut out = Vec::new();
    for w in toks.windows(4) {
        if w[0] == "dup" && w[3].starts_with("put") {
            if let (Ok(code), Some(name)) = (w[1].parse::<u8>(), w[2].strip_prefix('/')) {
                if let Some(c) = glyph_name_to_unicode(name).and_then(|s| s.chars().next()) {
                    out.push((code, c));
                }
            }
        }
        if w[0] == "readonly" || w[0] == "def" && !out.is_empty() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn load_to_unicode(doc: &Document, dict: &Dictionary) -> Option<CMap> {
    let obj = dict.get(b"ToUnicode").ok().map(|o| deref(doc, o))?;
    let stream = obj.as_stream().ok()?;
    let data = stream
        .get_plain_content_with_limit(FONT_STREAM_LIMIT)
        .ok()?;
    let cm = parse_cmap(&data);
    (!cm.is_empty()).then_some(cm)
}

/// Follow references (bounded).
pub(super) fn deref<'a>(doc: &'a Document, obj: &'a Object) -> &'a Object {
    let mut o = obj;
    for _ in 0..32 {
        match o {
            Object::Reference(id) => match doc.get_object(*id) {
                Ok(next) => o = next,
                Err(_) => return &Object::Null,
            },
            _ => return o,
        }
    }
    &Object::Null
}

pub(super) fn num(doc: &Document, obj: &Object) -> Option<f32> {
    match deref(doc, obj) {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

pub(super) fn name_of(doc: &Document, obj: Option<&Object>) -> Option<Vec<u8>> {
    match deref(doc, obj?) {
        Object::Name(n) => Some(n.clone()),
        _ => None,
    }
}

fn strip_subset(name: Vec<u8>) -> Vec<u8> {
    if name.len() > 7 && name[6] == b'+' && name[..6].iter().all(|c| c.is_ascii_uppercase()) {
        name[7..].to_vec()
    } else {
        name
    }
}

fn classify_std14(base: &str) -> Option<Std14> {
    let l = base.to_ascii_lowercase().replace([' ', '-', ','], "");
    let bold = l.contains("bold") || l.contains("black") || l.contains("heavy");
    if l.starts_with("zapfdingbats") || l.starts_with("dingbats") {
        Some(Std14::ZapfDingbats)
    } else if l.starts_with("symbol") {
        Some(Std14::Symbol)
    } else if l.starts_with("courier") {
        Some(Std14::Courier)
    } else if l.starts_with("helvetica") || l.starts_with("arial") {
        Some(if bold {
            Std14::HelveticaBold
        } else {
            Std14::Helvetica
        })
    } else if l.starts_with("times") {
        Some(if bold {
            Std14::TimesBold
        } else {
            Std14::TimesRoman
        })
    } else {
        None
    }
}

fn std_width(font: Std14, c: char) -> Option<f32> {
    let table: &[(u16, u16)] = match font {
        Std14::Courier => return Some(0.6),
        Std14::Helvetica => tables::HELVETICA_WIDTHS,
        Std14::HelveticaBold => tables::HELVETICA_BOLD_WIDTHS,
        Std14::TimesRoman => tables::TIMES_ROMAN_WIDTHS,
        Std14::TimesBold => tables::TIMES_BOLD_WIDTHS,
        Std14::Symbol | Std14::ZapfDingbats => return None,
    };
    let u = u32::from(c);
    if u > 0xFFFF {
        return None;
    }
    table
        .binary_search_by_key(&(u as u16), |e| e.0)
        .ok()
        .map(|i| table[i].1 as f32 / 1000.0)
}

/// Unicode text for a glyph name (Adobe Glyph List, `uniXXXX`, `uXXXX[XX]`,
/// `gXX`-style and `cNN` names, suffixes like `.sc`, ligatures `f_f`).
pub(super) fn glyph_name_to_unicode(name: &str) -> Option<String> {
    if let Some(c) = single_glyph(name) {
        return Some(c);
    }
    let base = name.split('.').next().unwrap_or(name);
    if base.is_empty() {
        return None;
    }
    if base != name {
        if let Some(c) = single_glyph(base) {
            return Some(c);
        }
    }
    if base.contains('_') {
        let mut out = String::new();
        for part in base.split('_') {
            out.push_str(&single_glyph(part)?);
        }
        return Some(out);
    }
    None
}

fn single_glyph(name: &str) -> Option<String> {
    if let Ok(i) = tables::GLYPH_NAMES.binary_search_by(|e| e.0.cmp(name)) {
        return char::from_u32(tables::GLYPH_NAMES[i].1 as u32).map(String::from);
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = name.strip_prefix("uni") {
        if rest.len() >= 4 && rest.len() % 4 == 0 && is_hex(rest) {
            let units: Vec<u16> = rest
                .as_bytes()
                .chunks(4)
                .filter_map(|c| hex(std::str::from_utf8(c).ok()?).map(|v| v as u16))
                .collect();
            let s = String::from_utf16_lossy(&units);
            return (!s.is_empty()).then_some(s);
        }
    }
    if let Some(rest) = name.strip_prefix('u') {
        if (4..=6).contains(&rest.len()) && is_hex(rest) {
            return hex(rest).and_then(char::from_u32).map(String::from);
        }
    }
    // Names some producers use for plain codes (as pdf.js reads them):
    // `Gxx` / `g00xx` (hex), `Cdd[d]` / `cdd[d]` (decimal).
    let bytes = name.as_bytes();
    let code = match bytes.first() {
        Some(b'G') if name.len() == 3 && is_hex(&name[1..]) => hex(&name[1..]),
        Some(b'g') if name.len() == 5 && is_hex(&name[1..]) => hex(&name[1..]),
        Some(b'g')
            if (2..=4).contains(&name.len()) && name[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            name[1..].parse::<u32>().ok()
        }
        Some(b'C') | Some(b'c')
            if (3..=4).contains(&name.len()) && name[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            name[1..].parse::<u32>().ok()
        }
        _ => None,
    }?;
    if code < 32 {
        return None;
    }
    char::from_u32(code).map(String::from)
}

/// Wingdings codes for boxes and marks used on forms.
fn wingdings_char(code: u32) -> Option<char> {
    Some(match code {
        0x6E => '\u{25A0}', // black square
        0x6F => '\u{25A1}', // white square
        0x71 => '\u{2751}',
        0x78 => '\u{2612}', // X in box
        0xA8 => '\u{2610}', // ballot box
        0xFB => '\u{2717}', // ballot x
        0xFC => '\u{2713}', // check mark
        0xFD => '\u{2612}', // ballot box with x
        0xFE => '\u{2611}', // ballot box with check
        0x9F => '\u{2022}',
        _ => return None,
    })
}

/// Symbol fonts often map to the private-use area U+F0xx: translate those.
fn map_wingdings_pua(c: char) -> char {
    let u = c as u32;
    let code = if (0xF000..=0xF0FF).contains(&u) {
        u - 0xF000
    } else {
        u
    };
    if code <= 0xFF {
        if let Some(w) = wingdings_char(code) {
            return w;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_names() {
        for (n, s) in [
            ("aring", "å"),
            ("adieresis", "ä"),
            ("odieresis", "ö"),
            ("Aring", "Å"),
            ("Adieresis", "Ä"),
            ("Odieresis", "Ö"),
            ("eacute", "é"),
            ("uni00E5", "å"),
            ("uni00E500E4", "åä"),
            ("u00F6", "ö"),
            ("u1F600", "\u{1F600}"),
            ("g0041", "A"),
            ("G41", "A"),
            ("c65", "A"),
            ("a.sc", "a"),
            ("f_i", "fi"),
            ("a20", "\u{2714}"),
            ("space", " "),
        ] {
            assert_eq!(glyph_name_to_unicode(n).as_deref(), Some(s), "{n}");
        }
        assert_eq!(glyph_name_to_unicode("notaglyphname"), None);
    }

    #[test]
    fn std_widths() {
        assert_eq!(std_width(Std14::Helvetica, 'A'), Some(0.667));
        assert_eq!(std_width(Std14::Helvetica, 'å'), Some(0.556));
        assert_eq!(std_width(Std14::Courier, 'x'), Some(0.6));
        assert_eq!(classify_std14("Arial,Bold"), Some(Std14::HelveticaBold));
        assert_eq!(classify_std14("TimesNewRomanPSMT"), Some(Std14::TimesRoman));
    }
}
