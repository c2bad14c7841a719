//! A small content-stream interpreter for the text operators: positions each
//! glyph on the page and groups glyphs into words.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use lopdf::{DecompressError, Dictionary, Document, Error as LoError, Object, ObjectId};

use super::fonts::{deref, num, Font};
use super::lexer::{Lexer, Operand};
use super::{Graphic, Page, PdfLimits, Word, MAX_GRAPHICS};

type Matrix = [f32; 6];
const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
/// Glyph box above and below the baseline, in em.
const ASCENT: f32 = 0.8;
const DESCENT: f32 = 0.2;
/// A horizontal gap wider than this (in em) between glyphs splits a word.
const WORD_GAP: f32 = 0.2;
const MAX_GSTATE_DEPTH: usize = 256;
const MAX_PARENT_DEPTH: usize = 64;

fn mul(m: &Matrix, n: &Matrix) -> Matrix {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

#[inline]
fn apply(m: &Matrix, x: f32, y: f32) -> (f32, f32) {
    (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
}

#[derive(Hash, PartialEq, Eq, Clone, Copy)]
enum FontKey {
    Id(ObjectId),
    Ptr(usize),
}

/// Fonts decoded once per document, shared by its pages.
#[derive(Default)]
pub(super) struct FontCache {
    fonts: HashMap<FontKey, Rc<Font>>,
    fallback: Option<Rc<Font>>,
}

#[derive(Clone)]
struct GState {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    h_scale: f32,
    leading: f32,
    rise: f32,
}

impl Default for GState {
    fn default() -> Self {
        GState {
            ctm: IDENTITY,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            h_scale: 1.0,
            leading: 0.0,
            rise: 0.0,
        }
    }
}

struct CurWord {
    text: String,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    end: (f32, f32),
    dir: (f32, f32),
    em: f32,
}

#[derive(Default)]
struct WordBuilder {
    words: Vec<Word>,
    cur: Option<CurWord>,
}

struct GlyphGeom {
    origin: (f32, f32),
    end: (f32, f32),
    dir: (f32, f32),
    em: f32,
    bbox: [f32; 4],
}

impl WordBuilder {
    fn flush(&mut self) {
        if let Some(w) = self.cur.take() {
            if !w.text.is_empty() {
                self.words.push(Word {
                    text: w.text,
                    x0: w.x0,
                    y0: w.y0,
                    x1: w.x1,
                    y1: w.y1,
                });
            }
        }
    }

    fn push(&mut self, text: &str, g: &GlyphGeom) {
        if let Some(cur) = &self.cur {
            let d = (g.origin.0 - cur.end.0, g.origin.1 - cur.end.1);
            let along = d.0 * cur.dir.0 + d.1 * cur.dir.1;
            let perp = cur.dir.0 * d.1 - cur.dir.1 * d.0;
            let same_dir = g.dir.0 * cur.dir.0 + g.dir.1 * cur.dir.1 > 0.9;
            let em = 0.5 * (cur.em + g.em);
            if !same_dir || perp.abs() > 0.35 * em || along > WORD_GAP * em || along < -0.5 * em {
                self.flush();
            }
        }
        let mut started = false;
        for c in text.chars() {
            if c.is_whitespace() {
                self.flush();
                continue;
            }
            if c.is_control() {
                continue;
            }
            match &mut self.cur {
                Some(cur) => {
                    cur.text.push(c);
                    if !started {
                        cur.x0 = cur.x0.min(g.bbox[0]);
                        cur.y0 = cur.y0.min(g.bbox[1]);
                        cur.x1 = cur.x1.max(g.bbox[2]);
                        cur.y1 = cur.y1.max(g.bbox[3]);
                    }
                }
                None => {
                    self.cur = Some(CurWord {
                        text: c.to_string(),
                        x0: g.bbox[0],
                        y0: g.bbox[1],
                        x1: g.bbox[2],
                        y1: g.bbox[3],
                        end: g.end,
                        dir: g.dir,
                        em: g.em,
                    });
                }
            }
            started = true;
        }
        if let Some(cur) = &mut self.cur {
            cur.end = g.end;
            cur.em = g.em;
        }
    }
}

struct Interp<'a, 'c> {
    doc: &'a Document,
    fonts: &'c mut FontCache,
    ops_left: usize,
    bytes_left: usize,
    max_depth: usize,
    gs: GState,
    stack: Vec<GState>,
    tm: Matrix,
    tlm: Matrix,
    display: Matrix,
    words: WordBuilder,
    images: HashSet<ObjectId>,
    inline_images: usize,
    active_forms: Vec<ObjectId>,
    /// The path being built: its box and whether every segment so far is axis-aligned.
    path: Option<PathBox>,
    /// The current point of the path, in user space (for the next segment's direction).
    point: (f32, f32),
    graphics: Vec<Graphic>,
}

#[derive(Clone, Copy)]
struct PathBox {
    bbox: [f32; 4],
    straight: bool,
}

/// Page geometry: the visible box and the rotation (degrees, multiple of 90).
pub(super) fn page_geometry(doc: &Document, page: &Dictionary) -> ([f32; 4], i64) {
    let media = inherited(doc, page, b"MediaBox")
        .and_then(|o| rect(doc, o))
        .unwrap_or([0.0, 0.0, 612.0, 792.0]);
    let crop = inherited(doc, page, b"CropBox").and_then(|o| rect(doc, o));
    let mut b = match crop {
        Some(c) => {
            let i = [
                c[0].max(media[0]),
                c[1].max(media[1]),
                c[2].min(media[2]),
                c[3].min(media[3]),
            ];
            if i[2] > i[0] && i[3] > i[1] {
                i
            } else {
                media
            }
        }
        None => media,
    };
    if b[2] - b[0] <= 0.0 || b[3] - b[1] <= 0.0 {
        b = [0.0, 0.0, 612.0, 792.0];
    }
    let rotate = inherited(doc, page, b"Rotate")
        .and_then(|o| num(doc, o))
        .map(|r| r as i64)
        .unwrap_or(0);
    let rotate = (rotate.rem_euclid(360) / 90) * 90;
    (b, rotate)
}

fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..MAX_PARENT_DEPTH {
        if let Ok(v) = node.get(key) {
            return Some(deref(doc, v));
        }
        node = match node.get(b"Parent").map(|o| deref(doc, o)) {
            Ok(Object::Dictionary(d)) => d,
            _ => return None,
        };
    }
    None
}

fn rect(doc: &Document, obj: &Object) -> Option<[f32; 4]> {
    let Object::Array(a) = obj else { return None };
    if a.len() < 4 {
        return None;
    }
    let v: Vec<f32> = a.iter().take(4).filter_map(|o| num(doc, o)).collect();
    if v.len() < 4 || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Some([
        v[0].min(v[2]),
        v[1].min(v[3]),
        v[0].max(v[2]),
        v[1].max(v[3]),
    ])
}

/// The matrix from user space to displayed page space (top-left origin, y down).
pub(super) fn display_matrix(b: [f32; 4], rotate: i64) -> (Matrix, f32, f32) {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    match rotate {
        90 => ([0.0, 1.0, 1.0, 0.0, -b[1], -b[0]], h, w),
        180 => ([-1.0, 0.0, 0.0, 1.0, b[2], -b[1]], w, h),
        270 => ([0.0, -1.0, -1.0, 0.0, b[3], b[2]], h, w),
        _ => ([1.0, 0.0, 0.0, -1.0, -b[0], b[3]], w, h),
    }
}

/// Read one page. The flag tells whether its content could be read.
pub(super) fn read_page(
    doc: &Document,
    page_id: ObjectId,
    number: usize,
    limits: &PdfLimits,
    fonts: &mut FontCache,
) -> (Page, bool) {
    let Ok(page) = doc.get_dictionary(page_id) else {
        return (
            Page {
                number,
                width: 612.0,
                height: 792.0,
                words: Vec::new(),
                image_count: 0,
                graphics: Vec::new(),
            },
            false,
        );
    };
    let (b, rotate) = page_geometry(doc, page);
    let (display, width, height) = display_matrix(b, rotate);
    let resources = inherited(doc, page, b"Resources").and_then(|o| o.as_dict().ok());

    let mut it = Interp {
        doc,
        fonts,
        ops_left: limits.max_ops_per_page,
        bytes_left: limits.max_decompressed_bytes,
        max_depth: limits.max_xobject_depth,
        gs: GState::default(),
        stack: Vec::new(),
        tm: IDENTITY,
        tlm: IDENTITY,
        display,
        words: WordBuilder::default(),
        images: HashSet::new(),
        inline_images: 0,
        active_forms: Vec::new(),
        path: None,
        point: (0.0, 0.0),
        graphics: Vec::new(),
    };
    // Image XObjects listed on the page count even when not drawn directly.
    if let Some(xobjects) = resources
        .and_then(|r| r.get(b"XObject").ok())
        .map(|o| deref(doc, o))
        .and_then(|o| o.as_dict().ok())
    {
        for (_, v) in xobjects.iter().take(10_000) {
            if let Object::Reference(id) = v {
                if let Ok(Object::Stream(s)) = doc.get_object(*id) {
                    if matches!(s.dict.get(b"Subtype"), Ok(Object::Name(n)) if n.as_slice() == b"Image")
                    {
                        it.images.insert(*id);
                    }
                }
            }
        }
    }

    let mut ok = true;
    let content_ids = doc.get_page_contents(page_id);
    let mut data = Vec::new();
    let mut decoded_any = content_ids.is_empty();
    for id in content_ids {
        let Ok(Object::Stream(s)) = doc.get_object(id) else {
            continue;
        };
        match s.get_plain_content_with_limit(it.bytes_left) {
            Ok(d) => {
                it.bytes_left = it.bytes_left.saturating_sub(d.len());
                data.extend_from_slice(&d);
                data.push(b'\n');
                decoded_any = true;
            }
            Err(LoError::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                decoded_any = false;
                data.clear();
                break;
            }
            Err(_) => {}
        }
    }
    if !decoded_any {
        ok = false;
    } else if !data.is_empty() {
        it.run(&data, resources, 0);
    }
    it.words.flush();
    it.annotations(page);
    let image_count = it.images.len() + it.inline_images;
    (
        Page {
            number,
            width,
            height,
            words: std::mem::take(&mut it.words.words),
            image_count,
            graphics: std::mem::take(&mut it.graphics),
        },
        ok,
    )
}

impl<'a> Interp<'a, '_> {
    /// Interpret a content stream; returns the number of operations run.
    fn run(&mut self, data: &[u8], resources: Option<&'a Dictionary>, depth: usize) -> usize {
        let mut ran = 0;
        let mut lexer = Lexer::new(data);
        let mut operands = Vec::new();
        loop {
            // Operands count as well as operators (a `TJ` of 30 million numbers is 30 million
            // operations); a Form XObject run meanwhile takes from the same budget.
            lexer.set_budget(self.ops_left);
            let before = lexer.used();
            let Some(op) = lexer.next_op(&mut operands) else {
                break;
            };
            self.ops_left = self.ops_left.saturating_sub(lexer.used() - before);
            ran += 1;
            self.op(op, &operands, resources, depth);
        }
        ran
    }

    fn f(&self, operands: &[Operand<'_>], i: usize) -> f32 {
        match operands.get(i) {
            Some(Operand::Num(v)) if v.is_finite() => *v,
            _ => 0.0,
        }
    }

    fn op(
        &mut self,
        operator: &[u8],
        operands: &[Operand<'_>],
        resources: Option<&'a Dictionary>,
        depth: usize,
    ) {
        match operator {
            b"q" if self.stack.len() < MAX_GSTATE_DEPTH => self.stack.push(self.gs.clone()),
            b"Q" => {
                if let Some(g) = self.stack.pop() {
                    self.gs = g;
                }
            }
            b"cm" if operands.len() >= 6 => {
                let m = self.matrix(&operands[operands.len() - 6..]);
                self.gs.ctm = mul(&m, &self.gs.ctm);
            }
            b"BT" => {
                self.tm = IDENTITY;
                self.tlm = IDENTITY;
            }
            b"ET" => {}
            b"Tf" if operands.len() >= 2 => {
                self.gs.size = self.f(operands, operands.len() - 1);
                self.gs.font = match &operands[operands.len() - 2] {
                    Operand::Name(n) => self.font(resources, n),
                    _ => None,
                };
            }
            b"Tc" => self.gs.char_spacing = self.f(operands, 0),
            b"Tw" => self.gs.word_spacing = self.f(operands, 0),
            b"Tz" => self.gs.h_scale = self.f(operands, 0) / 100.0,
            b"TL" => self.gs.leading = self.f(operands, 0),
            b"Ts" => self.gs.rise = self.f(operands, 0),
            b"Td" => {
                let (tx, ty) = (self.f(operands, 0), self.f(operands, 1));
                self.next_line(tx, ty);
            }
            b"TD" => {
                let (tx, ty) = (self.f(operands, 0), self.f(operands, 1));
                self.gs.leading = -ty;
                self.next_line(tx, ty);
            }
            b"Tm" if operands.len() >= 6 => {
                self.tm = self.matrix(&operands[operands.len() - 6..]);
                self.tlm = self.tm;
            }
            b"T*" => self.next_line(0.0, -self.gs.leading),
            b"Tj" => {
                if let Some(s @ Operand::Str(..)) = operands.last() {
                    self.show(std::slice::from_ref(s));
                }
            }
            b"TJ" => {
                if let Some(Operand::Array(a)) = operands.last() {
                    self.show(a);
                }
            }
            b"'" => {
                self.next_line(0.0, -self.gs.leading);
                if let Some(s @ Operand::Str(..)) = operands.last() {
                    self.show(std::slice::from_ref(s));
                }
            }
            b"\"" if operands.len() >= 3 => {
                let operands = &operands[operands.len() - 3..];
                self.gs.word_spacing = self.f(operands, 0);
                self.gs.char_spacing = self.f(operands, 1);
                self.next_line(0.0, -self.gs.leading);
                if let s @ Operand::Str(..) = &operands[2] {
                    self.show(std::slice::from_ref(s));
                }
            }
            b"Do" => {
                if let Some(Operand::Name(n)) = operands.last() {
                    self.do_xobject(resources, n, depth);
                }
            }
            b"BI" => {
                self.inline_images += 1;
                self.place_image();
            }
            b"m" if operands.len() >= 2 => {
                let p = (self.f(operands, 0), self.f(operands, 1));
                self.point = p;
                self.extend_path(&[p], true);
            }
            b"l" if operands.len() >= 2 => {
                let p = (self.f(operands, 0), self.f(operands, 1));
                let axis = (p.0 - self.point.0).abs() < 0.01 || (p.1 - self.point.1).abs() < 0.01;
                self.point = p;
                self.extend_path(&[p], axis && self.ctm_keeps_axes());
            }
            b"c" | b"v" | b"y" if operands.len() >= 4 => {
                let n = operands.len().min(6) / 2;
                let pts: Vec<(f32, f32)> = (0..n)
                    .map(|i| (self.f(operands, 2 * i), self.f(operands, 2 * i + 1)))
                    .collect();
                if let Some(last) = pts.last() {
                    self.point = *last;
                }
                self.extend_path(&pts, false);
            }
            b"re" if operands.len() >= 4 => {
                let (x, y, w, h) = (
                    self.f(operands, 0),
                    self.f(operands, 1),
                    self.f(operands, 2),
                    self.f(operands, 3),
                );
                self.point = (x, y);
                let keeps = self.ctm_keeps_axes();
                self.extend_path(&[(x, y), (x + w, y), (x + w, y + h), (x, y + h)], keeps);
            }
            b"S" | b"s" | b"f" | b"F" | b"f*" | b"B" | b"B*" | b"b" | b"b*" => {
                if let Some(path) = self.path.take() {
                    self.push_graphic(Graphic {
                        bbox: path.bbox,
                        straight: path.straight,
                        image: false,
                    });
                }
            }
            b"n" => self.path = None,
            _ => {}
        }
    }

    /// Ink and stamp annotations (a signature drawn or stamped in a viewer) as shapes.
    fn annotations(&mut self, page: &Dictionary) {
        let doc = self.doc;
        let Ok(Object::Array(annots)) = page.get(b"Annots").map(|o| deref(doc, o)) else {
            return;
        };
        for a in annots.iter().take(1_000) {
            let Ok(dict) = deref(doc, a).as_dict() else {
                continue;
            };
            let drawn = matches!(dict.get(b"Subtype"), Ok(Object::Name(n)) if n.as_slice() == b"Ink" || n.as_slice() == b"Stamp");
            let Some(r) = dict.get(b"Rect").ok().and_then(|o| rect(doc, o)) else {
                continue;
            };
            if !drawn {
                continue;
            }
            let (a, b) = (
                apply(&self.display, r[0], r[1]),
                apply(&self.display, r[2], r[3]),
            );
            self.push_graphic(Graphic {
                bbox: [a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)],
                straight: false,
                image: false,
            });
        }
    }

    /// Whether the CTM maps horizontal and vertical lines to horizontal and vertical lines.
    fn ctm_keeps_axes(&self) -> bool {
        let m = mul(&self.gs.ctm, &self.display);
        (m[1].abs() < 1e-3 && m[2].abs() < 1e-3) || (m[0].abs() < 1e-3 && m[3].abs() < 1e-3)
    }

    /// Adds user-space points to the current path's box (in display space).
    fn extend_path(&mut self, pts: &[(f32, f32)], straight: bool) {
        let m = mul(&self.gs.ctm, &self.display);
        for &(x, y) in pts {
            let (px, py) = apply(&m, x, y);
            if !(px.is_finite() && py.is_finite()) {
                continue;
            }
            let path = self.path.get_or_insert(PathBox {
                bbox: [px, py, px, py],
                straight: true,
            });
            path.bbox = [
                path.bbox[0].min(px),
                path.bbox[1].min(py),
                path.bbox[2].max(px),
                path.bbox[3].max(py),
            ];
        }
        if let Some(path) = &mut self.path {
            path.straight &= straight;
        }
    }

    /// An image drawn now fills the unit square of the CTM.
    fn place_image(&mut self) {
        let m = mul(&self.gs.ctm, &self.display);
        let pts = [
            apply(&m, 0.0, 0.0),
            apply(&m, 1.0, 0.0),
            apply(&m, 0.0, 1.0),
            apply(&m, 1.0, 1.0),
        ];
        if pts.iter().any(|p| !(p.0.is_finite() && p.1.is_finite())) {
            return;
        }
        let xs = pts.iter().map(|p| p.0);
        let ys = pts.iter().map(|p| p.1);
        let bbox = [
            xs.clone().fold(f32::MAX, f32::min),
            ys.clone().fold(f32::MAX, f32::min),
            xs.fold(f32::MIN, f32::max),
            ys.fold(f32::MIN, f32::max),
        ];
        self.push_graphic(Graphic {
            bbox,
            straight: false,
            image: true,
        });
    }

    fn push_graphic(&mut self, g: Graphic) {
        if self.graphics.len() < MAX_GRAPHICS {
            self.graphics.push(g);
        }
    }

    fn matrix(&self, operands: &[Operand<'_>]) -> Matrix {
        let mut m = [0.0; 6];
        for (i, v) in m.iter_mut().enumerate() {
            *v = self.f(operands, i);
        }
        m
    }

    fn object_matrix(&self, a: &[Object]) -> Matrix {
        let mut m = [0.0; 6];
        for (i, v) in m.iter_mut().enumerate() {
            *v = a
                .get(i)
                .and_then(|o| num(self.doc, o))
                .filter(|x| x.is_finite())
                .unwrap_or(0.0);
        }
        m
    }

    fn next_line(&mut self, tx: f32, ty: f32) {
        self.tlm = mul(&[1.0, 0.0, 0.0, 1.0, tx, ty], &self.tlm);
        self.tm = self.tlm;
    }

    fn font(&mut self, resources: Option<&'a Dictionary>, name: &[u8]) -> Option<Rc<Font>> {
        let fonts = resources?
            .get(b"Font")
            .ok()
            .map(|o| deref(self.doc, o))?
            .as_dict()
            .ok()?;
        let entry = fonts.get(name).ok()?;
        let dict = deref(self.doc, entry).as_dict().ok()?;
        let key = match entry {
            Object::Reference(id) => FontKey::Id(*id),
            _ => FontKey::Ptr(dict as *const Dictionary as usize),
        };
        if let Some(f) = self.fonts.fonts.get(&key) {
            return Some(f.clone());
        }
        let font = Rc::new(Font::load(self.doc, dict));
        self.fonts.fonts.insert(key, font.clone());
        Some(font)
    }

    /// Show the strings (and TJ adjustments) of a text-showing operator.
    fn show(&mut self, items: &[Operand<'_>]) {
        let font = match &self.gs.font {
            Some(f) => f.clone(),
            None => self
                .fonts
                .fallback
                .get_or_insert_with(|| Rc::new(Font::fallback()))
                .clone(),
        };
        let gs = &self.gs;
        let (fs, th, tc, tw, rise) = (
            gs.size,
            gs.h_scale,
            gs.char_spacing,
            gs.word_spacing,
            gs.rise,
        );
        let full = mul(&mul(&self.tm, &gs.ctm), &self.display);
        let finite = full.iter().all(|v| v.is_finite());
        // Direction of the baseline and the em size in display space.
        let dx = full[0] * th;
        let dy = full[1] * th;
        let dlen = (dx * dx + dy * dy).sqrt();
        let dir = if dlen > 0.0 {
            (dx / dlen, dy / dlen)
        } else {
            (1.0, 0.0)
        };
        let em = ((full[2] * fs).powi(2) + (full[3] * fs).powi(2)).sqrt();
        let visible = finite && em > 0.0 && em.is_finite();
        let mut adv = 0.0f32;
        let words = &mut self.words;
        for item in items {
            match item {
                Operand::Str(bytes) => {
                    font.for_each_code(bytes, |g| {
                        let w = g.width * fs * th;
                        if visible && !g.text.is_empty() {
                            let (ylo, yhi) = (rise - DESCENT * fs, rise + ASCENT * fs);
                            let pts = [
                                apply(&full, adv, ylo),
                                apply(&full, adv + w, ylo),
                                apply(&full, adv, yhi),
                                apply(&full, adv + w, yhi),
                            ];
                            let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
                            for (x, y) in pts {
                                bbox[0] = bbox[0].min(x);
                                bbox[1] = bbox[1].min(y);
                                bbox[2] = bbox[2].max(x);
                                bbox[3] = bbox[3].max(y);
                            }
                            let geom = GlyphGeom {
                                origin: apply(&full, adv, rise),
                                end: apply(&full, adv + w, rise),
                                dir,
                                em,
                                bbox,
                            };
                            words.push(g.text, &geom);
                        }
                        adv += (g.width * fs + tc + if g.is_space_byte { tw } else { 0.0 }) * th;
                    });
                }
                Operand::Num(n) if n.is_finite() => adv -= n / 1000.0 * fs * th,
                _ => {}
            }
        }
        if adv.is_finite() {
            self.tm = mul(&[1.0, 0.0, 0.0, 1.0, adv, 0.0], &self.tm);
        }
    }

    fn do_xobject(&mut self, resources: Option<&'a Dictionary>, name: &[u8], depth: usize) {
        let doc = self.doc;
        let Some(xobjects) = resources
            .and_then(|r| r.get(b"XObject").ok())
            .map(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok())
        else {
            return;
        };
        let Ok(entry) = xobjects.get(name) else {
            return;
        };
        let Object::Stream(stream) = deref(doc, entry) else {
            return;
        };
        let id = match entry {
            Object::Reference(id) => Some(*id),
            _ => None,
        };
        match stream.dict.get(b"Subtype") {
            Ok(Object::Name(n)) if n.as_slice() == b"Image" => {
                match id {
                    Some(id) => {
                        self.images.insert(id);
                    }
                    None => self.inline_images += 1,
                }
                self.place_image();
            }
            Ok(Object::Name(n)) if n.as_slice() == b"Form" => {
                if depth >= self.max_depth {
                    return;
                }
                if let Some(id) = id {
                    if self.active_forms.contains(&id) {
                        return;
                    }
                }
                let Ok(data) = stream.get_plain_content_with_limit(self.bytes_left) else {
                    return;
                };
                self.bytes_left = self.bytes_left.saturating_sub(data.len());
                let form_res = stream
                    .dict
                    .get(b"Resources")
                    .ok()
                    .map(|o| deref(doc, o))
                    .and_then(|o| o.as_dict().ok())
                    .or(resources);
                let matrix = match stream.dict.get(b"Matrix").map(|o| deref(doc, o)) {
                    Ok(Object::Array(a)) if a.len() >= 6 => self.object_matrix(a),
                    _ => IDENTITY,
                };
                let saved_gs = self.gs.clone();
                let saved_stack = self.stack.len();
                let (saved_tm, saved_tlm) = (self.tm, self.tlm);
                self.gs.ctm = mul(&matrix, &self.gs.ctm);
                if let Some(id) = id {
                    self.active_forms.push(id);
                }
                self.run(&data, form_res, depth + 1);
                if id.is_some() {
                    self.active_forms.pop();
                }
                self.stack.truncate(saved_stack);
                self.gs = saved_gs;
                self.tm = saved_tm;
                self.tlm = saved_tlm;
            }
            _ => {}
        }
    }
}
