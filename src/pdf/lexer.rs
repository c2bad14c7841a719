//! A fast, lenient tokenizer for content streams and CMaps: yields each operator with its
//! operands (or one token at a time), borrowing from the decoded stream where it can. It
//! never fails: malformed bytes are skipped.

use std::borrow::Cow;

const MAX_OPERANDS: usize = 64;
const MAX_ARRAY_DEPTH: usize = 16;
/// Items kept of one array operand; later ones are read (and counted) but dropped. A `TJ` of a
/// real line holds a few hundred.
pub(super) const MAX_ARRAY_ITEMS: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand<'a> {
    Num(f32),
    Str(Cow<'a, [u8]>),
    Name(Cow<'a, [u8]>),
    Array(Vec<Operand<'a>>),
    /// Booleans, null, dictionaries: nothing the interpreter reads.
    Other,
}

/// One item of a stream: an operand, or the operator that ends a run of operands.
#[derive(Debug, PartialEq)]
pub(super) enum Token<'a> {
    Operand(Operand<'a>),
    Operator(&'a [u8]),
}

pub(super) struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    /// Tokens (operators, operands and the items of array operands) that may still be read;
    /// once none is left the stream ends there. Every token costs, so 30 million operands of
    /// one `TJ` cost as much as 30 million operators.
    budget: usize,
    /// Tokens read so far.
    used: usize,
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c' | b'\0')
}

#[inline]
fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            budget: usize::MAX,
            used: 0,
        }
    }

    /// Sets how many tokens may still be read from here on.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// Tokens read so far (array items included).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Takes one token from the budget; false (and the stream ends) when none is left.
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            self.i = self.s.len();
            return false;
        }
        self.budget -= 1;
        self.used += 1;
        true
    }

    /// The next operator and its operands (`operands` is cleared first).
    /// Returns `None` at the end of the stream.
    pub fn next_op(&mut self, operands: &mut Vec<Operand<'a>>) -> Option<&'a [u8]> {
        operands.clear();
        loop {
            match self.next_token()? {
                Token::Operand(op) => {
                    if operands.len() >= MAX_OPERANDS {
                        operands.remove(0);
                    }
                    operands.push(op);
                }
                Token::Operator(word) => {
                    if word == b"BI" {
                        operands.clear();
                    }
                    return Some(word);
                }
            }
        }
    }

    /// The next operand or operator, one at a time (CMaps are read this way: their sections
    /// are longer than an operator's operand list). Returns `None` at the end of the stream.
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        loop {
            self.skip_ws();
            if self.i >= self.s.len() {
                return None;
            }
            let c = self.s[self.i];
            if !matches!(c, b']' | b')' | b'>' | b'{' | b'}') && !self.spend() {
                return None;
            }
            match c {
                b'[' | b'(' | b'<' | b'/' | b'+' | b'-' | b'.' | b'0'..=b'9' => {
                    return Some(Token::Operand(self.operand(0)));
                }
                b']' | b')' | b'>' | b'{' | b'}' => self.i += 1,
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && !is_ws(self.s[self.i])
                        && !is_delim(self.s[self.i])
                    {
                        self.i += 1;
                    }
                    let word = &self.s[start..self.i];
                    match word {
                        b"true" | b"false" | b"null" => {
                            return Some(Token::Operand(Operand::Other))
                        }
                        b"BI" => {
                            self.skip_inline_image();
                            return Some(Token::Operator(word));
                        }
                        _ => return Some(Token::Operator(word)),
                    }
                }
            }
        }
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() {
            let b = self.s[self.i];
            if is_ws(b) {
                self.i += 1;
            } else if b == b'%' {
                while self.i < self.s.len() && self.s[self.i] != b'\n' && self.s[self.i] != b'\r' {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn operand(&mut self, depth: usize) -> Operand<'a> {
        let s = self.s;
        let c = s[self.i];
        match c {
            b'(' => Operand::Str(self.literal_string()),
            b'<' if s.get(self.i + 1) == Some(&b'<') => {
                self.skip_dict();
                Operand::Other
            }
            b'<' => Operand::Str(Cow::Owned(self.hex_string())),
            b'/' => Operand::Name(self.name()),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.i >= s.len() {
                        break;
                    }
                    match s[self.i] {
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        b'[' | b'(' | b'<' | b'/' | b'+' | b'-' | b'.' | b'0'..=b'9'
                            if depth < MAX_ARRAY_DEPTH =>
                        {
                            if !self.spend() {
                                break;
                            }
                            let item = self.operand(depth + 1);
                            if items.len() < MAX_ARRAY_ITEMS {
                                items.push(item);
                            }
                        }
                        _ => {
                            // A keyword inside an array (true/false/null or garbage).
                            let start = self.i;
                            while self.i < s.len() && !is_ws(s[self.i]) && !is_delim(s[self.i]) {
                                self.i += 1;
                            }
                            if self.i == start {
                                self.i += 1;
                            }
                        }
                    }
                }
                Operand::Array(items)
            }
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Operand<'a> {
        let s = self.s;
        let start = self.i;
        self.i += 1;
        while self.i < s.len()
            && matches!(s[self.i], b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E')
        {
            self.i += 1;
        }
        let txt = std::str::from_utf8(&s[start..self.i]).unwrap_or("");
        match txt.parse::<f32>() {
            Ok(v) => Operand::Num(v),
            // Lenient forms such as "--5" or "5.-": keep what parses.
            Err(_) => {
                let cleaned: String = txt
                    .trim_start_matches(['+', '-'])
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let neg = txt.starts_with('-');
                let v = cleaned.parse::<f32>().unwrap_or(0.0);
                Operand::Num(if neg { -v } else { v })
            }
        }
    }

    fn name(&mut self) -> Cow<'a, [u8]> {
        let s = self.s;
        self.i += 1;
        let start = self.i;
        while self.i < s.len() && !is_ws(s[self.i]) && !is_delim(s[self.i]) {
            self.i += 1;
        }
        let raw = &s[start..self.i];
        if !raw.contains(&b'#') {
            return Cow::Borrowed(raw);
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut k = 0;
        while k < raw.len() {
            if raw[k] == b'#' && k + 2 < raw.len() {
                if let (Some(h), Some(l)) = (hex_val(raw[k + 1]), hex_val(raw[k + 2])) {
                    out.push(h << 4 | l);
                    k += 3;
                    continue;
                }
            }
            out.push(raw[k]);
            k += 1;
        }
        Cow::Owned(out)
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let s = self.s;
        self.i += 1;
        let mut out = Vec::new();
        let mut hi: Option<u8> = None;
        while self.i < s.len() && s[self.i] != b'>' {
            if let Some(d) = hex_val(s[self.i]) {
                match hi.take() {
                    Some(h) => out.push(h << 4 | d),
                    None => hi = Some(d),
                }
            }
            self.i += 1;
        }
        if let Some(h) = hi {
            out.push(h << 4);
        }
        self.i += 1;
        out
    }

    fn literal_string(&mut self) -> Cow<'a, [u8]> {
        let s = self.s;
        self.i += 1;
        let start = self.i;
        // Fast path: no escapes and balanced parentheses.
        let mut depth = 1usize;
        let mut j = self.i;
        let mut simple = true;
        while j < s.len() {
            match s[j] {
                b'\\' => {
                    simple = false;
                    break;
                }
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if simple {
            self.i = (j + 1).min(s.len());
            return Cow::Borrowed(&s[start..j.min(s.len())]);
        }
        let mut out = Vec::new();
        depth = 1;
        while self.i < s.len() {
            let b = s[self.i];
            self.i += 1;
            match b {
                b'\\' => {
                    let Some(&e) = s.get(self.i) else { break };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if s.get(self.i) == Some(&b'\n') {
                                self.i += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match s.get(self.i) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
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
        Cow::Owned(out)
    }

    fn skip_dict(&mut self) {
        let s = self.s;
        let mut depth = 0usize;
        while self.i < s.len() {
            match s[self.i] {
                b'<' if s.get(self.i + 1) == Some(&b'<') => {
                    depth += 1;
                    self.i += 2;
                }
                b'>' if s.get(self.i + 1) == Some(&b'>') => {
                    self.i += 2;
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                b'(' => {
                    let _ = self.literal_string();
                }
                _ => self.i += 1,
            }
        }
    }

    /// Skip `<dict entries> ID <data> EI` after `BI`.
    fn skip_inline_image(&mut self) {
        let s = self.s;
        // Find the ID keyword (delimited) that starts the data.
        while self.i < s.len() {
            self.skip_ws();
            if self.i + 2 <= s.len()
                && &s[self.i..self.i + 2] == b"ID"
                && s.get(self.i + 2).is_none_or(|&b| is_ws(b))
            {
                self.i += 3;
                break;
            }
            match s.get(self.i) {
                Some(b'(') => {
                    let _ = self.literal_string();
                }
                Some(b'<') if s.get(self.i + 1) != Some(&b'<') => {
                    let _ = self.hex_string();
                }
                Some(_) => {
                    let start = self.i;
                    while self.i < s.len()
                        && !is_ws(s[self.i])
                        && !(self.i > start && is_delim(s[self.i]))
                    {
                        self.i += 1;
                    }
                }
                None => return,
            }
        }
        // The data ends at whitespace + "EI" + whitespace (or end of stream).
        while self.i + 2 <= s.len() {
            if &s[self.i..self.i + 2] == b"EI"
                && self.i > 0
                && is_ws(s[self.i - 1])
                && s.get(self.i + 2).is_none_or(|&b| is_ws(b))
            {
                self.i += 2;
                return;
            }
            self.i += 1;
        }
        self.i = s.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(s: &[u8]) -> Vec<(String, Vec<Operand<'_>>)> {
        let mut lx = Lexer::new(s);
        let mut out = Vec::new();
        let mut v = Vec::new();
        while let Some(op) = lx.next_op(&mut v) {
            out.push((String::from_utf8_lossy(op).into_owned(), v.clone()));
        }
        out
    }

    #[test]
    fn tokens() {
        let r = ops(b"BT /F#31 12 Tf 1 0 0 1 -72.5 .5 Tm [(a\\(b\\)) -20 <4142> (x\\101y(z))] TJ % comment\nET");
        assert_eq!(r[0].0, "BT");
        assert_eq!(
            r[1],
            (
                "Tf".into(),
                vec![Operand::Name(Cow::Borrowed(b"F1")), Operand::Num(12.0)]
            )
        );
        assert_eq!(r[2].1[4], Operand::Num(-72.5));
        assert_eq!(r[2].1[5], Operand::Num(0.5));
        let Operand::Array(a) = &r[3].1[0] else {
            panic!()
        };
        assert_eq!(a[0], Operand::Str(Cow::Borrowed(b"a(b)")));
        assert_eq!(a[1], Operand::Num(-20.0));
        assert_eq!(a[2], Operand::Str(Cow::Borrowed(b"AB")));
        assert_eq!(a[3], Operand::Str(Cow::Borrowed(b"xAy(z)")));
        assert_eq!(r[4].0, "ET");
    }

    #[test]
    fn inline_image_and_dicts() {
        let r = ops(b"q BI /W 2 /H 1 /F /AHx ID \x00EI\xff EI Q /P <</MCID 0>> BDC (t) Tj EMC");
        let names: Vec<&str> = r.iter().map(|o| o.0.as_str()).collect();
        assert_eq!(names, ["q", "BI", "Q", "BDC", "Tj", "EMC"]);
    }

    #[test]
    fn every_operand_costs_and_long_arrays_are_cut() {
        let mut data = b"[".to_vec();
        for _ in 0..10_000 {
            data.extend_from_slice(b"1 ");
        }
        data.extend_from_slice(b"] TJ (a) Tj");
        let mut lx = Lexer::new(&data);
        lx.set_budget(100);
        let mut v = Vec::new();
        // The array's items use up the budget: the stream ends before TJ.
        assert_eq!(lx.next_op(&mut v), None);
        assert_eq!(lx.used(), 100);
        let mut lx = Lexer::new(&data);
        assert_eq!(lx.next_op(&mut v), Some(&b"TJ"[..]));
        let Operand::Array(a) = &v[0] else { panic!() };
        assert_eq!(a.len(), MAX_ARRAY_ITEMS);
        assert_eq!(lx.used(), 10_002);
    }

    #[test]
    fn garbage_never_loops() {
        // On a thread, so that a loop fails the test at its time limit instead of hanging it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = ops(b") ] } > >> ( unterminated");
            assert!(r.is_empty());
            let _ = ops(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ 1 2");
            let _ = ops(b"BI /W 1 ID");
            let _ = ops(b"/ # #4 #zz");
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the lexer ends on garbage within 10 s (and does not panic)");
    }
}
