//! Whether an order form is signed (SPEC §2.2): find the `Underskrift` label, take the box the
//! signature belongs in (below the label, around it as a table cell, on a line right of it or
//! on a line above it), and decide from what is inside that box.
//!
//! The box is found from horizontal rules, which both kinds of page give: a text PDF's painted
//! frames and lines, a scan's long runs of ink. Inside the box:
//! - on a text PDF, a painted curve or slanted line (a drawn signature) or an image placed in
//!   it signs the form; typed text does not (text is not a graphic here);
//! - on a scan, ink beyond the frame (long straight runs) and beyond the words read with
//!   confidence (a printed name) signs the form, if one stroke is large enough not to be noise.
//!
//! A form without such a label, or whose box cannot be located, is not decided
//! (`signature_not_checked`).

use super::ink::Rect;
use super::layout::{PageWords, Word};
use crate::imaging::INK;
use crate::pdf::Graphic;

/// What the signature box holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SignatureState {
    Signed,
    Missing,
    /// No signature box was found (or a page gave nothing to decide with).
    NotChecked,
}

/// A decision and, where a box was found, where it is (page number, points, origin top left).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignatureReading {
    pub state: SignatureState,
    pub place: Option<(usize, Rect)>,
}

impl SignatureReading {
    fn not_checked() -> SignatureReading {
        SignatureReading {
            state: SignatureState::NotChecked,
            place: None,
        }
    }
}

/// One horizontal rule: y and its x extent, in points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rule {
    y: f32,
    x0: f32,
    x1: f32,
}

/// How far from its label a signature box may reach, in points.
const REACH_DOWN: f32 = 170.0;
const REACH_RIGHT: f32 = 320.0;
/// The shortest rule that can frame a signature (about 18 mm).
const MIN_RULE: f32 = 50.0;
/// Height of the signing area above a lone line.
const LINE_AREA: f32 = 42.0;

/// Decides the signature of a form from its pages (the lowest signature label of the last page
/// that has one wins: a heading "C Underskrift av verksamhetschef" may come before the box's
/// own label).
/// `spans` are the parts of the pages that belong to the form (page, top, bottom): a page may
/// also hold the start of the next form. Empty: the whole pages.
pub fn read_signature(pages: &[&PageWords], spans: &[(usize, f32, f32)]) -> SignatureReading {
    let owned = |page: usize, w: &Word| {
        let mid = (w.y0 + w.y1) / 2.0;
        spans.is_empty()
            || spans
                .iter()
                .any(|(p, top, bottom)| *p == page && mid >= *top - 1.0 && mid < *bottom)
    };
    let found = pages.iter().rev().find_map(|p| {
        p.words
            .iter()
            .filter(|w| is_signature_label(&w.text) && owned(p.number, w))
            .max_by(|a, b| a.y0.total_cmp(&b.y0))
            .map(|w| (*p, w))
    });
    let Some((page, label)) = found else {
        return SignatureReading::not_checked();
    };
    let rules = match (&page.ink, page.graphics.is_empty()) {
        (Some(ink), _) => raster_rules(ink, label),
        (None, false) => vector_rules(&page.graphics),
        (None, true) => Vec::new(),
    };
    let regions = locate_boxes(label, &rules, page);
    // Signed when any of the places holds a signature; missing when none does.
    let mut reading = SignatureReading::not_checked();
    for region in regions {
        // A table row's rules span every cell: the box starts at the vertical rule left of the
        // label (else the cell before it, e.g. a handwritten Datum, would count as the signature).
        let verticals = match &page.ink {
            Some(ink) => raster_verticals(ink, &region),
            None => vector_verticals(&page.graphics, &region),
        };
        let region = narrow_to_cell(region, label, &verticals);
        let state = match &page.ink {
            Some(ink) => raster_signed(ink, &region, &page.words),
            None => vector_signed(&page.graphics, &region, page),
        };
        if reading.place.is_none() || state == SignatureState::Signed {
            reading = SignatureReading {
                state,
                place: Some((page.number, region)),
            };
        }
        if state == SignatureState::Signed {
            break;
        }
    }
    reading
}

/// `Underskrift`, `Underskrift:`, `underskrift` as OCR may damage it (one or two letters).
pub fn is_signature_label(text: &str) -> bool {
    let letters: String = text
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if letters.chars().count() < 9 || letters.chars().count() > 13 {
        return false;
    }
    strsim::levenshtein(&letters, "underskrift") <= 2
}

/// Painted straight frames and lines as rules: a thin shape is a line, a taller one a
/// rectangle with a top and a bottom edge.
fn vector_rules(graphics: &[Graphic]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for g in graphics.iter().filter(|g| g.straight && !g.image) {
        let [x0, y0, x1, y1] = g.bbox;
        if x1 - x0 < MIN_RULE {
            continue;
        }
        if y1 - y0 <= 3.0 {
            rules.push(Rule {
                y: (y0 + y1) / 2.0,
                x0,
                x1,
            });
        } else {
            rules.push(Rule { y: y0, x0, x1 });
            rules.push(Rule { y: y1, x0, x1 });
        }
    }
    rules
}

/// Long horizontal ink runs near the label, merged over neighbouring rows.
fn raster_rules(ink: &super::ink::InkImage, label: &Word) -> Vec<Rule> {
    let img = &ink.image;
    let s = ink.px_per_pt;
    let (w, h) = (img.width(), img.height());
    let px = |v: f32, max: u32| ((v * s).max(0.0) as u32).min(max);
    let y_from = px(label.y0 - REACH_DOWN, h);
    let y_to = px(label.y1 + REACH_DOWN, h);
    let min_run = (MIN_RULE * s) as u32;
    let mut pieces: Vec<Rule> = Vec::new();
    for y in y_from..y_to {
        let (mut run, mut start) = (0u32, 0u32);
        // A gap of a pixel or two (a scan's broken line) does not end a run, nor does a step of
        // a row up or down (a line left slanted by a skew the deskew did not take out).
        let mut gap = 0u32;
        for x in 0..=w {
            let dark = x < w
                && (y.saturating_sub(1)..=(y + 1).min(h - 1))
                    .any(|yy| img.get_pixel(x, yy).0[0] < INK);
            if dark {
                if run == 0 {
                    start = x;
                }
                run = x - start + 1;
                gap = 0;
            } else if run > 0 {
                gap += 1;
                if gap > 2 || x == w {
                    if run >= min_run {
                        pieces.push(Rule {
                            y: y as f32 / s,
                            x0: start as f32 / s,
                            x1: (start + run) as f32 / s,
                        });
                    }
                    run = 0;
                    gap = 0;
                }
            }
        }
    }
    // A line a few pixels thick is one rule (at its lowest row).
    let mut rules: Vec<Rule> = Vec::new();
    for rule in chain_slanted(pieces, s) {
        match rules.last_mut() {
            Some(last)
                if (rule.y - last.y) <= 1.5 / s.min(1.0) + 1.0
                    && rule.x0 < last.x1
                    && last.x0 < rule.x1 =>
            {
                last.y = rule.y;
            }
            _ => rules.push(rule),
        }
    }
    rules
}

/// Joins the pieces of a slanted line into one rule: a photo's perspective, not quite taken
/// out, leaves a box's edge a point or two higher at one end, and each row holds only a piece
/// of it (a piece starts where the one before it ends, a pixel or two up or down). The rule
/// keeps the y of its left end, and reaches as far as its last piece.
fn chain_slanted(mut pieces: Vec<Rule>, px_per_pt: f32) -> Vec<Rule> {
    pieces.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    let near = 3.0 / px_per_pt;
    // Each rule with the y of its right end.
    let mut chained: Vec<(Rule, f32)> = Vec::new();
    for p in pieces {
        let joins = chained
            .iter_mut()
            .find(|(c, end_y)| p.x0 <= c.x1 + near && p.x1 > c.x1 && (p.y - *end_y).abs() <= near);
        match joins {
            Some((c, end_y)) => {
                c.x1 = p.x1;
                *end_y = p.y;
            }
            None => chained.push((p, p.y)),
        }
    }
    let mut rules: Vec<Rule> = chained.into_iter().map(|(r, _)| r).collect();
    rules.sort_by(|a, b| a.y.total_cmp(&b.y));
    rules
}

/// The areas where the signature for a label may be, from the rules around it: the box or
/// cell under the label, the rest of the label's row right of it (a two-column table), a line
/// right of the label, a line above it.
fn locate_boxes(label: &Word, rules: &[Rule], page: &PageWords) -> Vec<Rect> {
    let lh = (label.y1 - label.y0).max(4.0);
    let spans_label = |r: &Rule| r.x0 <= label.x0 + lh && r.x1 >= label.x1 - lh * 0.5;
    let mut below: Vec<Rule> = rules
        .iter()
        .copied()
        .filter(|r| r.y > label.y1 - lh * 0.25 && r.y < label.y1 + REACH_DOWN && spans_label(r))
        .collect();
    below.sort_by(|a, b| a.y.total_cmp(&b.y));
    let above = rules
        .iter()
        .copied()
        .filter(|r| r.y < label.y0 + lh * 0.25 && r.y > label.y0 - lh * 1.5 && spans_label(r))
        .max_by(|a, b| a.y.total_cmp(&b.y));
    let pad = 1.5;
    let mut out = Vec::new();
    if let Some(first) = below.first() {
        if first.y - label.y1 < lh * 1.2 {
            // A box starting right under its label: down to the box's next rule.
            if let Some(second) = below
                .iter()
                .find(|r| r.y - first.y >= 15.0 && r.x0 < first.x1 && first.x0 < r.x1)
            {
                out.push([
                    first.x0.max(second.x0) + pad,
                    first.y + pad,
                    first.x1.min(second.x1) - pad,
                    second.y - pad,
                ]);
            }
        } else if first.y - label.y1 >= 15.0 {
            // The label heads a cell (or a box drawn around it): the cell below the label.
            out.push([
                first.x0 + pad,
                label.y1 + pad,
                first.x1 - pad,
                first.y - pad,
            ]);
        }
    }
    // The label's row right of it, between the rules above and below the label that reach
    // past it (the value cell of a two-column table).
    let reaching = |r: &Rule| r.x1 > label.x1 + 20.0 && r.x0 < label.x1 + REACH_RIGHT;
    let row_top = rules
        .iter()
        .filter(|r| reaching(r) && r.y <= label.y0 + lh * 0.25 && r.y >= label.y0 - lh * 2.5)
        .max_by(|a, b| a.y.total_cmp(&b.y));
    let row_bottom = rules
        .iter()
        .filter(|r| reaching(r) && r.y >= label.y1 - lh * 0.25 && r.y <= label.y1 + 90.0)
        .min_by(|a, b| a.y.total_cmp(&b.y));
    if let (Some(top), Some(bottom)) = (row_top, row_bottom) {
        // The row's rules may be several cells' edges: it reaches as far as they go.
        let reach = |at: &Rule| {
            rules
                .iter()
                .filter(|r| reaching(r) && (r.y - at.y).abs() < 1.5)
                .map(|r| r.x1)
                .fold(at.x1, f32::max)
        };
        if bottom.y - top.y >= lh * 1.5 {
            out.push([
                label.x1 + pad,
                top.y + pad,
                reach(top).min(reach(bottom)).min(page.width) - pad,
                bottom.y - pad,
            ]);
        }
    }
    // A line right of the label: the signature goes on it. It runs at the label's baseline,
    // not at its top (there it is the top of a box the label heads, left slanted by a photo's
    // perspective: the cell above it is not a signing area).
    let right = rules
        .iter()
        .filter(|r| {
            r.x0 >= label.x1 - lh
                && r.x0 <= label.x1 + REACH_RIGHT * 0.5
                && r.y >= (label.y0 + label.y1) / 2.0
                && r.y <= label.y1 + lh
        })
        .min_by(|a, b| a.x0.total_cmp(&b.x0));
    if let Some(r) = right {
        out.push([
            r.x0 + pad,
            (r.y - LINE_AREA).max(0.0),
            r.x1.min(page.width),
            r.y + lh * 0.3,
        ]);
    }
    // A line above the label (the label printed under the line to sign on).
    if let Some(r) = above {
        if out.is_empty() {
            out.push([r.x0 + pad, (r.y - LINE_AREA).max(0.0), r.x1 - pad, r.y]);
        }
    }
    out.retain(|r| r[2] - r[0] > 10.0 && r[3] - r[1] > 6.0);
    out
}

/// The region cut at the nearest vertical rule left of the label (x in points): the signature
/// is written in the label's cell or right of the label, never in a cell left of it. (Not cut on
/// the right: a label may sit in a column of its own, the signing area in the cell right of it.)
fn narrow_to_cell(region: Rect, label: &Word, verticals: &[f32]) -> Rect {
    let pad = 1.5;
    let left = verticals
        .iter()
        .copied()
        .filter(|x| *x > region[0] + pad && *x < label.x0)
        .fold(region[0], f32::max);
    if left > region[0] {
        [left + pad, region[1], region[2], region[3]]
    } else {
        region
    }
}

/// Thin straight painted lines that cross the region from top to bottom. (A cell painted as its
/// own rectangle already gives rules of its own width; a wider shape may be a slanted stroke of
/// the signature.)
fn vector_verticals(graphics: &[Graphic], region: &Rect) -> Vec<f32> {
    let height = region[3] - region[1];
    graphics
        .iter()
        .filter(|g| g.straight && !g.image)
        .map(|g| g.bbox)
        .filter(|[x0, y0, x1, y1]| {
            x1 - x0 <= 3.0 && *y0 <= region[1] + height * 0.1 && *y1 >= region[3] - height * 0.1
        })
        .map(|[x0, _, x1, _]| (x0 + x1) / 2.0)
        .collect()
}

/// Columns of ink that cross the region from top to bottom (a scan's cell borders), in points.
fn raster_verticals(ink: &super::ink::InkImage, region: &Rect) -> Vec<f32> {
    let img = &ink.image;
    let s = ink.px_per_pt;
    let to_px = |v: f32, max: u32| ((v * s).max(0.0) as u32).min(max);
    let (x0, y0) = (
        to_px(region[0], img.width()),
        to_px(region[1], img.height()),
    );
    let (x1, y1) = (
        to_px(region[2], img.width()),
        to_px(region[3], img.height()),
    );
    if y1 <= y0 + 4 || x1 <= x0 + 4 {
        return Vec::new();
    }
    let rows = y1 - y0;
    let mut xs = Vec::new();
    for x in x0..x1 {
        // A row counts when the line is there within two pixels (a slightly skewed scan).
        let dark = (y0..y1)
            .filter(|&y| {
                (x.saturating_sub(2)..=(x + 2).min(img.width() - 1))
                    .any(|xx| img.get_pixel(xx, y).0[0] < INK)
            })
            .count() as u32;
        if dark * 10 >= rows * 9 {
            xs.push(x as f32 / s);
        }
    }
    xs
}

/// Whether a rectangle's centre is inside the region.
fn centre_in(b: &Rect, region: &Rect) -> bool {
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    cx >= region[0] && cx <= region[2] && cy >= region[1] && cy <= region[3]
}

fn area(r: &Rect) -> f32 {
    (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0)
}

/// A text PDF: a curve, a slanted line or an image in the box signs it. A page that is one
/// large image (a scan with a text layer) cannot be decided from its graphics.
fn vector_signed(graphics: &[Graphic], region: &Rect, page: &PageWords) -> SignatureState {
    let page_area = page.width * page.height;
    if graphics
        .iter()
        .any(|g| g.image && page_area > 0.0 && area(&g.bbox) > page_area * 0.5)
    {
        return SignatureState::NotChecked;
    }
    let limit = area(region) * 4.0;
    let signed = graphics
        .iter()
        .any(|g| !g.straight && area(&g.bbox) <= limit && centre_in(&g.bbox, region));
    if signed {
        SignatureState::Signed
    } else {
        SignatureState::Missing
    }
}

/// A scan: ink in the box that is neither the frame (long straight runs), nor words read with
/// confidence (a typed or printed name), nor speckle.
fn raster_signed(ink: &super::ink::InkImage, region: &Rect, words: &[Word]) -> SignatureState {
    let img = &ink.image;
    let s = ink.px_per_pt;
    let to_px = |v: f32, max: u32| ((v * s).max(0.0) as u32).min(max);
    let (x0, y0) = (
        to_px(region[0], img.width()),
        to_px(region[1], img.height()),
    );
    let (x1, y1) = (
        to_px(region[2], img.width()),
        to_px(region[3], img.height()),
    );
    if x1 <= x0 + 4 || y1 <= y0 + 4 {
        return SignatureState::NotChecked;
    }
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            mask[y * w + x] = img.get_pixel(x0 + x as u32, y0 + y as u32).0[0] < INK;
        }
    }
    // The frame: long horizontal and vertical runs. A rule is at most MIN_RULE long in any
    // one row: a frame's edge that a photo left slanted comes in pieces of that length.
    let long_h = (w / 3)
        .min((MIN_RULE * s) as usize)
        .max((20.0 * s) as usize);
    let long_v = (h * 2 / 3).max(4);
    clear_runs(&mut mask, w, h, long_h, true);
    clear_runs(&mut mask, w, h, long_v, false);
    // Printed words read with confidence.
    for word in words.iter().filter(|w| {
        w.confidence >= 75.0 && w.text.chars().filter(|c| c.is_alphanumeric()).count() >= 2
    }) {
        let wx0 = ((word.x0 * s) as i64 - x0 as i64 - 1).max(0) as usize;
        let wy0 = ((word.y0 * s) as i64 - y0 as i64 - 1).max(0) as usize;
        let wx1 = (((word.x1 * s) as i64 - x0 as i64 + 2).max(0) as usize).min(w);
        let wy1 = (((word.y1 * s) as i64 - y0 as i64 + 2).max(0) as usize).min(h);
        for y in wy0..wy1 {
            for x in wx0..wx1 {
                mask[y * w + x] = false;
            }
        }
    }
    // One stroke at least 5 mm wide or 3.5 mm tall (14 and 10 points).
    let (min_w, min_h) = ((14.0 * s) as usize, (10.0 * s) as usize);
    if largest_stroke(&mask, w, h, min_w, min_h) {
        SignatureState::Signed
    } else {
        SignatureState::Missing
    }
}

/// Clears runs of at least `min` set cells along rows (`horizontal`) or columns. A run may
/// step one row (column) aside: a frame's line left slanted by a skew is still the frame.
fn clear_runs(mask: &mut [bool], w: usize, h: usize, min: usize, horizontal: bool) {
    let (outer, inner) = if horizontal { (h, w) } else { (w, h) };
    let idx = |o: usize, i: usize| if horizontal { o * w + i } else { i * w + o };
    let near = |mask: &[bool], o: usize, i: usize| {
        (o.saturating_sub(1)..=(o + 1).min(outer - 1)).any(|oo| mask[idx(oo, i)])
    };
    let mut clear = Vec::new();
    for o in 0..outer {
        let mut i = 0;
        while i < inner {
            if !near(mask, o, i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < inner && near(mask, o, i) {
                i += 1;
            }
            if i - start >= min {
                clear.extend((start..i).map(|j| idx(o, j)));
            }
        }
    }
    for k in clear {
        mask[k] = false;
    }
}

/// Whether some group of set cells spans at least `min_w` across or `min_h` down. Cells up to
/// two apart belong together: a pen stroke broken by binarisation stays one stroke.
fn largest_stroke(mask: &[bool], w: usize, h: usize, min_w: usize, min_h: usize) -> bool {
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut bx0, mut by0, mut bx1, mut by1) = (w, h, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            bx0 = bx0.min(x);
            bx1 = bx1.max(x);
            by0 = by0.min(y);
            by1 = by1.max(y);
            for dy in -2i64..=2 {
                for dx in -2i64..=2 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if bx1 + 1 - bx0 >= min_w || by1 + 1 - by0 >= min_h {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::ink::InkImage;
    use image::{GrayImage, Luma};
    use std::sync::Arc;

    fn word(text: &str, x0: f32, y0: f32, x1: f32, y1: f32) -> Word {
        Word {
            text: text.into(),
            x0,
            y0,
            x1,
            y1,
            confidence: 95.0,
        }
    }

    fn page(words: Vec<Word>, graphics: Vec<Graphic>, ink: Option<InkImage>) -> PageWords {
        PageWords {
            number: 1,
            width: 595.0,
            height: 842.0,
            words,
            ink,
            graphics,
        }
    }

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Graphic {
        Graphic {
            bbox: [x0, y0, x1, y1],
            straight: true,
            image: false,
        }
    }

    fn curve(x0: f32, y0: f32, x1: f32, y1: f32) -> Graphic {
        Graphic {
            bbox: [x0, y0, x1, y1],
            straight: false,
            image: false,
        }
    }

    #[test]
    fn labels_survive_ocr_damage() {
        for t in [
            "Underskrift",
            "Underskrift:",
            "UNDERSKRIFT",
            "Undersknft",
            "Underskrifi",
        ] {
            assert!(is_signature_label(t), "{t}");
        }
        for t in ["Under", "Utlämningsställe", "Verksamhetschef", "skrift"] {
            assert!(!is_signature_label(t), "{t}");
        }
    }

    #[test]
    fn a_vector_box_below_its_label() {
        let label = word("Underskrift", 56.0, 700.0, 110.0, 709.0);
        let frame = rect(56.0, 712.0, 303.0, 772.0);
        let empty = page(vec![label.clone()], vec![frame], None);
        let r = read_signature(&[&empty], &[]);
        assert_eq!(r.state, SignatureState::Missing);
        assert!(r.place.is_some());
        let signed = page(
            vec![label.clone()],
            vec![frame, curve(80.0, 725.0, 200.0, 760.0)],
            None,
        );
        assert_eq!(
            read_signature(&[&signed], &[]).state,
            SignatureState::Signed
        );
        // A scribble outside the box, or no box at all.
        let outside = page(
            vec![label.clone()],
            vec![frame, curve(350.0, 725.0, 450.0, 760.0)],
            None,
        );
        assert_eq!(
            read_signature(&[&outside], &[]).state,
            SignatureState::Missing
        );
        let nobox = page(vec![label], Vec::new(), None);
        assert_eq!(
            read_signature(&[&nobox], &[]).state,
            SignatureState::NotChecked
        );
        let nolabel = page(
            vec![word("Datum", 56.0, 700.0, 90.0, 709.0)],
            vec![frame],
            None,
        );
        assert_eq!(
            read_signature(&[&nolabel], &[]).state,
            SignatureState::NotChecked
        );
    }

    #[test]
    fn a_vector_cell_and_a_line() {
        // The label heads a table cell.
        let label = word("Underskrift", 60.0, 604.0, 110.0, 612.0);
        let cell = rect(56.0, 600.0, 300.0, 662.0);
        let p = page(
            vec![label.clone()],
            vec![cell, curve(70.0, 620.0, 180.0, 650.0)],
            None,
        );
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Signed);
        let p = page(vec![label], vec![cell], None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Missing);
        // "Underskrift: ________"
        let label = word("Underskrift:", 56.0, 700.0, 112.0, 709.0);
        let line = rect(118.0, 708.5, 320.0, 709.5);
        let p = page(vec![label.clone()], vec![line], None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Missing);
        let p = page(
            vec![label],
            vec![line, curve(130.0, 680.0, 250.0, 707.0)],
            None,
        );
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Signed);
    }

    #[test]
    fn a_two_column_table_row() {
        // | Underskrift | (signature) |
        let label = word("Underskrift", 45.0, 700.0, 100.0, 710.0);
        let cells = vec![
            rect(40.0, 685.0, 220.0, 725.0),
            rect(220.0, 685.0, 555.0, 725.0),
        ];
        let mut signed = cells.clone();
        signed.push(curve(240.0, 695.0, 360.0, 718.0));
        let p = page(vec![label.clone()], signed, None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Signed);
        let p = page(vec![label], cells, None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Missing);
    }

    /// A page image at 2 px/pt with a frame below the label, optionally a scribble in it.
    fn scan(scribble: bool, printed_name: bool) -> PageWords {
        let s = 2.0;
        let mut img = GrayImage::from_pixel((595.0 * s) as u32, (842.0 * s) as u32, Luma([255]));
        let (x0, y0, x1, y1) = (56.0 * s, 712.0 * s, 303.0 * s, 772.0 * s);
        for x in x0 as u32..=x1 as u32 {
            for t in 0..2 {
                img.put_pixel(x, y0 as u32 + t, Luma([0]));
                img.put_pixel(x, y1 as u32 - t, Luma([0]));
            }
        }
        for y in y0 as u32..=y1 as u32 {
            for t in 0..2 {
                img.put_pixel(x0 as u32 + t, y, Luma([0]));
                img.put_pixel(x1 as u32 - t, y, Luma([0]));
            }
        }
        // Speckle: a few dots.
        for (x, y) in [(300, 1480), (400, 1500), (500, 1490)] {
            img.put_pixel(x, y, Luma([0]));
        }
        let mut words = vec![word("Underskrift", 56.0, 700.0, 110.0, 709.0)];
        if scribble {
            for i in 0..200u32 {
                let t = i as f32 / 200.0;
                let x = 160.0 + t * 300.0;
                let y = 1490.0 + (t * 18.0).sin() * 25.0;
                for d in 0..3 {
                    img.put_pixel(x as u32, y as u32 + d, Luma([0]));
                }
            }
        }
        if printed_name {
            // Typed text in the box, read by OCR with confidence.
            for x in 130..260 {
                for y in 1470..1490 {
                    if (x + y) % 3 == 0 {
                        img.put_pixel(x, y, Luma([0]));
                    }
                }
            }
            words.push(word("Anna", 64.0, 734.0, 131.0, 746.0));
        }
        page(
            words,
            Vec::new(),
            Some(InkImage {
                image: Arc::new(img),
                px_per_pt: s,
            }),
        )
    }

    /// A scanned table row at 2 px/pt: Datum left, Underskrift right of a vertical rule, with a
    /// scribble (handwriting the OCR did not read with confidence) in one of the two cells.
    fn scanned_row(scribble_x: f32) -> PageWords {
        let s = 2.0;
        let mut img = GrayImage::from_pixel((595.0 * s) as u32, (842.0 * s) as u32, Luma([255]));
        let (x0, y0, x1, y1, mid) = (56.0 * s, 600.0 * s, 540.0 * s, 662.0 * s, 300.0 * s);
        for x in x0 as u32..=x1 as u32 {
            for t in 0..2 {
                img.put_pixel(x, y0 as u32 + t, Luma([0]));
                img.put_pixel(x, y1 as u32 - t, Luma([0]));
            }
        }
        for y in y0 as u32..=y1 as u32 {
            for x in [x0, mid, x1 - 1.0] {
                for t in 0..2 {
                    img.put_pixel(x as u32 + t, y, Luma([0]));
                }
            }
        }
        for i in 0..200u32 {
            let t = i as f32 / 200.0;
            let x = (scribble_x + t * 120.0) * s;
            let y = (640.0 + (t * 18.0).sin() * 10.0) * s;
            for d in 0..3 {
                img.put_pixel(x as u32, y as u32 + d, Luma([0]));
            }
        }
        page(
            vec![
                word("Datum", 62.0, 604.0, 90.0, 612.0),
                word("Underskrift", 306.0, 604.0, 356.0, 612.0),
            ],
            Vec::new(),
            Some(InkImage {
                image: Arc::new(img),
                px_per_pt: s,
            }),
        )
    }

    #[test]
    fn ink_in_the_neighbouring_cell_does_not_sign() {
        let r = read_signature(&[&scanned_row(100.0)], &[]);
        assert_eq!(r.state, SignatureState::Missing);
        let (_, place) = r.place.unwrap();
        assert!(place[0] > 300.0, "{place:?}");
        assert_eq!(
            read_signature(&[&scanned_row(360.0)], &[]).state,
            SignatureState::Signed
        );
        // The same row drawn in a text PDF: a curve in the Datum cell does not sign either.
        let label = word("Underskrift", 306.0, 604.0, 356.0, 612.0);
        let lines = vec![
            rect(56.0, 599.5, 540.0, 600.5),
            rect(56.0, 661.5, 540.0, 662.5),
            rect(55.5, 600.0, 56.5, 662.0),
            rect(299.5, 600.0, 300.5, 662.0),
            rect(539.5, 600.0, 540.5, 662.0),
        ];
        let mut left = lines.clone();
        left.push(curve(100.0, 625.0, 220.0, 655.0));
        let p = page(vec![label.clone()], left, None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Missing);
        let mut right = lines;
        right.push(curve(330.0, 625.0, 450.0, 655.0));
        let p = page(vec![label], right, None);
        assert_eq!(read_signature(&[&p], &[]).state, SignatureState::Signed);
    }

    #[test]
    fn a_scanned_box() {
        assert_eq!(
            read_signature(&[&scan(true, false)], &[]).state,
            SignatureState::Signed
        );
        assert_eq!(
            read_signature(&[&scan(false, false)], &[]).state,
            SignatureState::Missing
        );
        assert_eq!(
            read_signature(&[&scan(false, true)], &[]).state,
            SignatureState::Missing
        );
        assert_eq!(
            read_signature(&[&scan(true, true)], &[]).state,
            SignatureState::Signed
        );
    }

    /// A photographed box whose edges a perspective left slanted (5 pt lower at the right
    /// end), its label inside at the top left, and ink of the cell above it (a telephone
    /// number OCR did not read) right of the label: `scribble_x` puts a signature in the box.
    fn slanted_box(scribble_x: Option<f32>) -> PageWords {
        let s = 2.0;
        let mut img = GrayImage::from_pixel((595.0 * s) as u32, (842.0 * s) as u32, Luma([255]));
        let (x0, x1) = (56.0, 540.0);
        for x in (x0 * s) as u32..=(x1 * s) as u32 {
            let drop = (x as f32 / s - x0) / (x1 - x0) * 5.0;
            for edge in [600.0, 662.0] {
                for t in 0..2 {
                    img.put_pixel(x, ((edge + drop) * s) as u32 + t, Luma([0]));
                }
            }
        }
        for y in (600.0 * s) as u32..=(667.0 * s) as u32 {
            for x in [x0, x1] {
                img.put_pixel((x * s) as u32, y, Luma([0]));
            }
        }
        // Digits in the cell above, right of the label.
        for x in (230.0 * s) as u32..(290.0 * s) as u32 {
            if (x / 6) % 2 == 0 {
                for y in (585.0 * s) as u32..(596.0 * s) as u32 {
                    img.put_pixel(x, y, Luma([0]));
                }
            }
        }
        if let Some(sx) = scribble_x {
            for i in 0..200u32 {
                let t = i as f32 / 200.0;
                let (x, y) = ((sx + t * 120.0) * s, (640.0 + (t * 18.0).sin() * 10.0) * s);
                for d in 0..3 {
                    img.put_pixel(x as u32, y as u32 + d, Luma([0]));
                }
            }
        }
        page(
            vec![word("Underskrift", 60.0, 602.0, 110.0, 610.0)],
            Vec::new(),
            Some(InkImage {
                image: Arc::new(img),
                px_per_pt: s,
            }),
        )
    }

    #[test]
    fn a_slanted_box_is_one_box_and_the_cell_above_it_is_not_signed() {
        let r = read_signature(&[&slanted_box(None)], &[]);
        assert_eq!(r.state, SignatureState::Missing, "{r:?}");
        let (_, place) = r.place.unwrap();
        assert!(
            place[1] > 600.0 && place[2] > 500.0,
            "the whole box: {place:?}"
        );
        let r = read_signature(&[&slanted_box(Some(380.0))], &[]);
        assert_eq!(r.state, SignatureState::Signed, "{r:?}");
    }
}
