//! A small CMap parser: codespace ranges (to split byte strings into codes)
//! and the `bfchar`/`bfrange` sections of a `/ToUnicode` CMap. The tokens come from the
//! content-stream lexer (`super::lexer`).

use std::collections::HashMap;

use super::lexer::{Lexer, Operand, Token};

/// Upper bound on the codes a single `bfrange` may expand into the map.
/// Larger ranges are kept as ranges and looked up linearly.
const EXPAND_RANGE_MAX: u32 = 256;
/// Upper bound on the entries kept from one CMap (defence against huge CMaps).
const MAX_ENTRIES: usize = 100_000;
/// Longest destination string, in bytes (UTF-16BE): a ligature maps to a few characters; one
/// code mapped to 30 000 characters is an attack and is not kept.
const MAX_DESTINATION_BYTES: usize = 64;
/// Text kept from one CMap's destinations in all, in bytes.
const MAX_TEXT_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy)]
pub(super) struct CodespaceRange {
    pub len: u8,
    pub lo: [u8; 4],
    pub hi: [u8; 4],
}

#[derive(Debug, Clone)]
enum RangeTarget {
    /// The first destination as UTF-16 code units; the last unit is incremented.
    Offset(Vec<u16>),
    /// One destination per code.
    List(Vec<String>),
}

#[derive(Debug, Clone)]
struct BfRange {
    lo: u32,
    hi: u32,
    target: RangeTarget,
}

/// A parsed CMap: codespace ranges plus (for a ToUnicode CMap) code -> text.
#[derive(Debug, Clone, Default)]
pub(super) struct CMap {
    pub codespace: Vec<CodespaceRange>,
    singles: HashMap<u32, String>,
    ranges: Vec<BfRange>,
}

impl CMap {
    pub fn is_empty(&self) -> bool {
        self.singles.is_empty() && self.ranges.is_empty()
    }

    /// Add (or replace) the text of one code.
    pub fn insert(&mut self, code: u32, text: String) {
        self.singles.insert(code, text);
    }

    /// The text for a code, if the CMap maps it.
    pub fn lookup(&self, code: u32) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(s) = self.singles.get(&code) {
            return Some(std::borrow::Cow::Borrowed(s.as_str()));
        }
        for r in &self.ranges {
            if code >= r.lo && code <= r.hi {
                let off = code - r.lo;
                return match &r.target {
                    RangeTarget::Offset(units) => {
                        Some(std::borrow::Cow::Owned(offset_units(units, off)))
                    }
                    RangeTarget::List(list) => list
                        .get(off as usize)
                        .map(|s| std::borrow::Cow::Borrowed(s.as_str())),
                };
            }
        }
        None
    }

    /// The length in bytes of the code starting at `bytes[0]`, from the
    /// codespace ranges; `default` when no range matches (or none is declared).
    pub fn code_len(&self, bytes: &[u8], default: usize) -> usize {
        code_len_in(&self.codespace, bytes, default)
    }
}

pub(super) fn code_len_in(codespace: &[CodespaceRange], bytes: &[u8], default: usize) -> usize {
    if codespace.is_empty() {
        return default.min(bytes.len()).max(1);
    }
    let mut best_partial: Option<usize> = None;
    for n in 1..=4usize {
        if n > bytes.len() {
            break;
        }
        for r in codespace.iter().filter(|r| r.len as usize == n) {
            let ok = bytes[..n]
                .iter()
                .zip(&r.lo[..n])
                .zip(&r.hi[..n])
                .all(|((b, lo), hi)| b >= lo && b <= hi);
            if ok {
                return n;
            }
            if best_partial.is_none() && bytes[0] >= r.lo[0] && bytes[0] <= r.hi[0] {
                best_partial = Some(n);
            }
        }
    }
    best_partial
        .or_else(|| codespace.iter().map(|r| r.len as usize).min())
        .unwrap_or(default)
        .min(bytes.len())
        .max(1)
}

fn offset_units(units: &[u16], off: u32) -> String {
    let mut v = units.to_vec();
    if let Some(last) = v.last_mut() {
        *last = last.wrapping_add(off as u16);
    }
    String::from_utf16_lossy(&v)
}

fn utf16_text(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                c[0] as u16
            }
        })
        .collect();
    String::from_utf16_lossy(&units)
}

fn code_value(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0u32, |acc, &b| (acc << 8) | b as u32)
}

/// The bytes of a string operand (hex or literal).
fn string(token: Option<Token<'_>>) -> Option<Vec<u8>> {
    match token? {
        Token::Operand(Operand::Str(b)) => Some(b.into_owned()),
        _ => None,
    }
}

/// Parse a CMap stream (ToUnicode or an embedded encoding CMap).
pub(super) fn parse_cmap(data: &[u8]) -> CMap {
    let mut cmap = CMap::default();
    let mut lx = Lexer::new(data);
    let mut entries = 0usize;
    let mut text_bytes = 0usize;
    while let Some(token) = lx.next_token() {
        let Token::Operator(w) = token else { continue };
        match w {
            b"begincodespacerange" => {
                while let Some(a) = string(lx.next_token()) {
                    let Some(b) = string(lx.next_token()) else {
                        break;
                    };
                    let n = a.len().min(b.len());
                    if (1..=4).contains(&n) && cmap.codespace.len() < 64 {
                        let mut lo = [0u8; 4];
                        let mut hi = [0u8; 4];
                        lo[..n].copy_from_slice(&a[..n]);
                        hi[..n].copy_from_slice(&b[..n]);
                        cmap.codespace.push(CodespaceRange {
                            len: n as u8,
                            lo,
                            hi,
                        });
                    }
                }
            }
            b"beginbfchar" => {
                while let Some(src) = string(lx.next_token()) {
                    let text = match lx.next_token() {
                        Some(Token::Operand(Operand::Str(d)))
                            if d.len() > MAX_DESTINATION_BYTES =>
                        {
                            continue
                        }
                        Some(Token::Operand(Operand::Str(d))) => utf16_text(&d),
                        Some(Token::Operand(Operand::Name(n))) => std::str::from_utf8(&n)
                            .ok()
                            .and_then(super::fonts::glyph_name_to_unicode)
                            .unwrap_or_default(),
                        _ => break,
                    };
                    if entries < MAX_ENTRIES && text_bytes + text.len() <= MAX_TEXT_BYTES {
                        entries += 1;
                        text_bytes += text.len();
                        cmap.singles.insert(code_value(&src), text);
                    }
                }
            }
            b"beginbfrange" => {
                while let Some(lo) = string(lx.next_token()) {
                    let Some(hi) = string(lx.next_token()) else {
                        break;
                    };
                    let (lo, hi) = (code_value(&lo), code_value(&hi));
                    let target = match lx.next_token() {
                        Some(Token::Operand(Operand::Str(d)))
                            if d.len() > MAX_DESTINATION_BYTES =>
                        {
                            continue
                        }
                        Some(Token::Operand(Operand::Str(d))) => {
                            let units: Vec<u16> = d
                                .chunks(2)
                                .map(|c| {
                                    if c.len() == 2 {
                                        u16::from_be_bytes([c[0], c[1]])
                                    } else {
                                        c[0] as u16
                                    }
                                })
                                .collect();
                            RangeTarget::Offset(units)
                        }
                        Some(Token::Operand(Operand::Array(items))) => RangeTarget::List(
                            items
                                .iter()
                                .map_while(|item| match item {
                                    Operand::Str(d) if d.len() <= MAX_DESTINATION_BYTES => {
                                        Some(utf16_text(d))
                                    }
                                    _ => None,
                                })
                                .collect(),
                        ),
                        _ => break,
                    };
                    let target_bytes = match &target {
                        RangeTarget::Offset(units) => units.len() * 2,
                        RangeTarget::List(list) => list.iter().map(String::len).sum(),
                    };
                    if hi < lo
                        || entries >= MAX_ENTRIES
                        || text_bytes + target_bytes > MAX_TEXT_BYTES
                    {
                        continue;
                    }
                    text_bytes += target_bytes;
                    if hi - lo < EXPAND_RANGE_MAX {
                        for code in lo..=hi {
                            let off = code - lo;
                            let text = match &target {
                                RangeTarget::Offset(units) => offset_units(units, off),
                                RangeTarget::List(list) => match list.get(off as usize) {
                                    Some(s) => s.clone(),
                                    None => break,
                                },
                            };
                            entries += 1;
                            text_bytes += text.len();
                            cmap.singles.insert(code, text);
                        }
                    } else {
                        entries += 1;
                        cmap.ranges.push(BfRange { lo, hi, target });
                    }
                }
            }
            _ => {}
        }
    }
    cmap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bfchar_bfrange_and_codespace() {
        let data = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
            1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
            2 beginbfchar <0003> <0020> <0011> <00C5> endbfchar\n\
            2 beginbfrange <0020> <0022> <0041> <0030> <0031> [<00E5> <00E4>]\n\
            endbfrange\n1 beginbfrange <1000> <2000> <4E00> endbfrange endcmap";
        let cm = parse_cmap(data);
        assert_eq!(cm.lookup(0x11).as_deref(), Some("Å"));
        assert_eq!(cm.lookup(0x22).as_deref(), Some("C"));
        assert_eq!(cm.lookup(0x31).as_deref(), Some("ä"));
        assert_eq!(cm.lookup(0x1001).as_deref(), Some("\u{4E01}"));
        assert_eq!(cm.lookup(0x5000), None);
        assert_eq!(cm.code_len(&[0, 3, 0, 4], 1), 2);
    }

    #[test]
    fn long_destinations_and_too_much_text_are_not_kept() {
        // One code to 30 000 characters: not kept, the short one next to it is.
        let long = "0041".repeat(30_000);
        let data = format!("2 beginbfchar <0001> <{long}> <0002> <0042> endbfchar");
        let cm = parse_cmap(data.as_bytes());
        assert_eq!(cm.lookup(1), None);
        assert_eq!(cm.lookup(2).as_deref(), Some("B"));
        // Many codes at the longest destination: kept up to MAX_TEXT_BYTES of text.
        let dest = "4E00".repeat(MAX_DESTINATION_BYTES / 2);
        let mut data = String::from("beginbfchar\n");
        for code in 0..100_000u32 {
            data.push_str(&format!("<{code:06X}> <{dest}>\n"));
        }
        data.push_str("endbfchar");
        let cm = parse_cmap(data.as_bytes());
        let kept = cm.singles.values().map(String::len).sum::<usize>();
        assert!(kept <= MAX_TEXT_BYTES, "{kept}");
        assert!(cm.lookup(0).is_some());
        assert_eq!(cm.lookup(99_999), None);
    }

    #[test]
    fn mixed_codespace_lengths() {
        let cm = parse_cmap(b"2 begincodespacerange <00> <80> <8140> <9FFC> endcodespacerange");
        assert_eq!(cm.code_len(&[0x41, 0x81], 2), 1);
        assert_eq!(cm.code_len(&[0x81, 0x40], 2), 2);
    }

    #[test]
    fn long_sections_names_literals_and_comments() {
        // More entries than a content-stream operator keeps as operands.
        let mut data = String::from("% a comment\n/CIDSystemInfo << /Registry (Adobe) >> def\n");
        data.push_str("150 beginbfchar\n");
        for code in 0..150u32 {
            data.push_str(&format!("<{code:04X}> <{:04X}>\n", 0x4E00 + code));
        }
        data.push_str("endbfchar 2 beginbfchar <0200> /Aring <0201> (\\000a) endbfchar");
        let cm = parse_cmap(data.as_bytes());
        assert_eq!(cm.lookup(0).as_deref(), Some("\u{4E00}"));
        assert_eq!(cm.lookup(149).as_deref(), Some("\u{4E95}"));
        assert_eq!(cm.lookup(0x200).as_deref(), Some("Å"));
        assert_eq!(cm.lookup(0x201).as_deref(), Some("a"));
    }
}
