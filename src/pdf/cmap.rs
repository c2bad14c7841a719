//! A small CMap parser: codespace ranges (to split byte strings into codes)
//! and the `bfchar`/`bfrange` sections of a `/ToUnicode` CMap.

use std::collections::HashMap;

/// Upper bound on the codes a single `bfrange` may expand into the map.
/// Larger ranges are kept as ranges and looked up linearly.
const EXPAND_RANGE_MAX: u32 = 256;
/// Upper bound on the entries kept from one CMap (defence against huge CMaps).
const MAX_ENTRIES: usize = 100_000;

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

#[derive(Debug)]
enum Tok<'a> {
    Hex(Vec<u8>),
    Str(Vec<u8>),
    Name(&'a [u8]),
    Num,
    Word(&'a [u8]),
    ArrOpen,
    ArrClose,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn next_tok(&mut self) -> Option<Tok<'a>> {
        let s = self.s;
        loop {
            while self.i < s.len() && (s[self.i].is_ascii_whitespace() || s[self.i] == 0) {
                self.i += 1;
            }
            if self.i >= s.len() {
                return None;
            }
            if s[self.i] == b'%' {
                while self.i < s.len() && s[self.i] != b'\n' && s[self.i] != b'\r' {
                    self.i += 1;
                }
                continue;
            }
            break;
        }
        let c = s[self.i];
        match c {
            b'<' if s.get(self.i + 1) == Some(&b'<') => {
                self.i += 2;
                Some(Tok::Word(b"<<"))
            }
            b'>' if s.get(self.i + 1) == Some(&b'>') => {
                self.i += 2;
                Some(Tok::Word(b">>"))
            }
            b'<' => {
                self.i += 1;
                let mut out = Vec::new();
                let mut hi: Option<u8> = None;
                while self.i < s.len() && s[self.i] != b'>' {
                    let d = match s[self.i] {
                        b @ b'0'..=b'9' => Some(b - b'0'),
                        b @ b'a'..=b'f' => Some(b - b'a' + 10),
                        b @ b'A'..=b'F' => Some(b - b'A' + 10),
                        _ => None,
                    };
                    if let Some(d) = d {
                        match hi.take() {
                            Some(h) => out.push((h << 4) | d),
                            None => hi = Some(d),
                        }
                    }
                    self.i += 1;
                }
                if let Some(h) = hi {
                    out.push(h << 4);
                }
                self.i += 1;
                Some(Tok::Hex(out))
            }
            b'(' => {
                // Literal string (rare in CMaps): balanced parentheses, simple escapes.
                self.i += 1;
                let mut depth = 1;
                let mut out = Vec::new();
                while self.i < s.len() {
                    let b = s[self.i];
                    self.i += 1;
                    match b {
                        b'\\' if self.i < s.len() => {
                            let e = s[self.i];
                            self.i += 1;
                            out.push(match e {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                _ => e,
                            });
                        }
                        b'(' => {
                            depth += 1;
                            out.push(b);
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            out.push(b);
                        }
                        _ => out.push(b),
                    }
                }
                Some(Tok::Str(out))
            }
            b'[' => {
                self.i += 1;
                Some(Tok::ArrOpen)
            }
            b']' => {
                self.i += 1;
                Some(Tok::ArrClose)
            }
            b'/' => {
                self.i += 1;
                let st = self.i;
                while self.i < s.len() && !is_delim(s[self.i]) {
                    self.i += 1;
                }
                Some(Tok::Name(&s[st..self.i]))
            }
            _ => {
                let st = self.i;
                self.i += 1;
                while self.i < s.len() && !is_delim(s[self.i]) {
                    self.i += 1;
                }
                let w = &s[st..self.i];
                match std::str::from_utf8(w)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                {
                    Some(_) => Some(Tok::Num),
                    None => Some(Tok::Word(w)),
                }
            }
        }
    }
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'<' | b'>' | b'[' | b']' | b'(' | b')' | b'/' | b'%' | b'{' | b'}' | 0
        )
}

fn tok_bytes(t: Tok<'_>) -> Option<Vec<u8>> {
    match t {
        Tok::Hex(b) | Tok::Str(b) => Some(b),
        _ => None,
    }
}

/// Parse a CMap stream (ToUnicode or an embedded encoding CMap).
pub(super) fn parse_cmap(data: &[u8]) -> CMap {
    let mut cmap = CMap::default();
    let mut lx = Lexer { s: data, i: 0 };
    let mut entries = 0usize;
    while let Some(tok) = lx.next_tok() {
        let Tok::Word(w) = tok else { continue };
        match w {
            b"begincodespacerange" => {
                while let Some(a) = lx.next_tok().and_then(tok_bytes) {
                    let Some(b) = lx.next_tok().and_then(tok_bytes) else {
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
                while let Some(src) = lx.next_tok().and_then(tok_bytes) {
                    let Some(dst) = lx.next_tok() else { break };
                    let text = match dst {
                        Tok::Hex(d) | Tok::Str(d) => utf16_text(&d),
                        Tok::Name(n) => std::str::from_utf8(n)
                            .ok()
                            .and_then(super::fonts::glyph_name_to_unicode)
                            .unwrap_or_default(),
                        _ => break,
                    };
                    if entries < MAX_ENTRIES {
                        entries += 1;
                        cmap.singles.insert(code_value(&src), text);
                    }
                }
            }
            b"beginbfrange" => {
                while let Some(lo) = lx.next_tok().and_then(tok_bytes) {
                    let Some(hi) = lx.next_tok().and_then(tok_bytes) else {
                        break;
                    };
                    let (lo, hi) = (code_value(&lo), code_value(&hi));
                    let target = match lx.next_tok() {
                        Some(Tok::Hex(d)) | Some(Tok::Str(d)) => {
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
                        Some(Tok::ArrOpen) => {
                            let mut list = Vec::new();
                            while let Some(t) = lx.next_tok() {
                                match t {
                                    Tok::Hex(d) | Tok::Str(d) => list.push(utf16_text(&d)),
                                    _ => break,
                                }
                            }
                            RangeTarget::List(list)
                        }
                        _ => break,
                    };
                    if hi < lo || entries >= MAX_ENTRIES {
                        continue;
                    }
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
    fn mixed_codespace_lengths() {
        let cm = parse_cmap(b"2 begincodespacerange <00> <80> <8140> <9FFC> endcodespacerange");
        assert_eq!(cm.code_len(&[0x41, 0x81], 2), 1);
        assert_eq!(cm.code_len(&[0x81, 0x40], 2), 2);
    }
}
