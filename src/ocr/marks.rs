//! Reading check boxes on a scan. Tesseract reads a marked box as `X`, `[X]`, garbage or
//! nothing, and an empty one as `[]`, `O` or nothing, so the text alone cannot be trusted. The
//! project's own forms (pdf_writer.rs) print a square box of 11–12 pt right before each option
//! text (0.4 em to its left, on the text line: Fillable, Table, SameLine choices) or, for a lone
//! Ja/Nej box in the Table layout, under its label. We find that square next to the option's
//! words, measure the ink inside it, and put a clean token (`X` or `☐`) in place of whatever
//! Tesseract read there, so the layout reader sees the mark as in a text layer.

use image::GrayImage;

use super::prep::INK;
use super::tesseract::TsvWord;
use crate::forms::labels::{fold, near_option};
use crate::forms::spec::{FieldType, FormKind};

/// Share of the box's inside covered by ink above which it counts as marked. An empty box reads
/// 0–2 % (noise, a stroke of the border), a printed `X` or a drawn cross 15–35 %.
const MARKED_SHARE: f32 = 0.07;

/// A found box in pixels: left, top, right, bottom (inclusive border).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxHit {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    pub ink: f32,
}

/// The texts that have a box before them: choice options and Ja/Nej labels of both forms.
fn boxed_texts() -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    for kind in FormKind::ALL {
        for f in kind.fields() {
            match f.field_type {
                FieldType::Choice(opts) => {
                    for o in opts {
                        out.push((o.label.split_whitespace().map(fold).collect(), false));
                    }
                }
                FieldType::YesNo => {
                    out.push((f.label.split_whitespace().map(fold).collect(), true))
                }
                FieldType::Text => {}
            }
        }
    }
    out
}

/// Finds the boxes next to option texts in `words`, replaces the words read inside them by `X`
/// or `☐` and returns how many boxes were decided.
pub fn read_boxes(bin: &GrayImage, words: &mut Vec<TsvWord>) -> usize {
    let texts = boxed_texts();
    let folded: Vec<String> = words.iter().map(|w| fold(&w.text)).collect();
    let mut hits: Vec<BoxHit> = Vec::new();
    for i in 0..words.len() {
        for (parts, yes_no) in &texts {
            if !matches_at(&folded, words, i, parts) {
                continue;
            }
            let w = &words[i];
            let h = w.height.max(8);
            let found = box_left_of(bin, w.left, w.top, h).or_else(|| {
                if *yes_no {
                    box_below(bin, w, h)
                } else {
                    None
                }
            });
            if let Some(b) = found {
                if !hits.iter().any(|o| o.x0 == b.x0 && o.y0 == b.y0) {
                    hits.push(b);
                }
            }
        }
    }
    for b in &hits {
        let inside = |w: &TsvWord| {
            let (cx, cy) = (w.left + w.width / 2, w.top + w.height / 2);
            cx >= b.x0 && cx <= b.x1 && cy >= b.y0 && cy <= b.y1
        };
        let line = words
            .iter()
            .find(|w| inside(w))
            .map(|w| w.line)
            .unwrap_or((0, 0, 0));
        words.retain(|w| !inside(w));
        words.push(TsvWord {
            text: if b.ink >= MARKED_SHARE {
                "X".into()
            } else {
                "☐".into()
            },
            left: b.x0,
            top: b.y0,
            width: b.x1 - b.x0 + 1,
            height: b.y1 - b.y0 + 1,
            confidence: 95.0,
            line,
            mark: true,
        });
    }
    hits.len()
}

fn matches_at(folded: &[String], words: &[TsvWord], i: usize, parts: &[String]) -> bool {
    if i + parts.len() > folded.len() {
        return false;
    }
    // Tesseract's line numbers differ between segmentation modes: compare the boxes instead.
    let first = &words[i];
    let mid = |w: &TsvWord| w.top + w.height / 2;
    let same_line = words[i..i + parts.len()]
        .iter()
        .all(|w| mid(w) >= first.top && mid(w) <= first.top + first.height && w.left >= first.left);
    same_line && near_option(&folded[i..i + parts.len()].concat(), &parts.concat())
}

fn dark(bin: &GrayImage, x: u32, y: u32) -> bool {
    x < bin.width() && y < bin.height() && bin.get_pixel(x, y).0[0] < INK
}

/// A square box ending just left of `left`, vertically around a text line at `top` of height `h`.
fn box_left_of(bin: &GrayImage, left: u32, top: u32, h: u32) -> Option<BoxHit> {
    let x_from = left.saturating_sub(h * 3);
    let x_to = left.saturating_sub(1);
    let y_from = top.saturating_sub(h * 3 / 4);
    let y_to = (top + h + h * 3 / 4).min(bin.height().saturating_sub(1));
    find_box(bin, x_from, x_to, y_from, y_to, h)
}

/// The share of ink inside a square box right before a text at `left`, `top` of height `h`
/// (pixels), if there is one: for a lone check box drawn before its label on a text PDF.
pub fn ink_in_box_before(bin: &GrayImage, left: u32, top: u32, h: u32) -> Option<f32> {
    box_left_of(bin, left, top, h).map(|b| b.ink)
}

/// A box under a label (the Ja/Nej cell of the Table layout).
fn box_below(bin: &GrayImage, w: &TsvWord, h: u32) -> Option<BoxHit> {
    let y_from = w.top + w.height + 1;
    let y_to = (y_from + h * 3).min(bin.height().saturating_sub(1));
    let x_from = w.left.saturating_sub(h);
    let x_to = (w.left + h * 3).min(bin.width().saturating_sub(1));
    find_box(bin, x_from, x_to, y_from, y_to, h)
}

/// The rightmost square of side 0.7h–2.5h whose four borders are dark lines, within the window.
fn find_box(
    bin: &GrayImage,
    x_from: u32,
    x_to: u32,
    y_from: u32,
    y_to: u32,
    h: u32,
) -> Option<BoxHit> {
    if x_to <= x_from || y_to <= y_from {
        return None;
    }
    let min_side = h * 7 / 10;
    let max_side = h * 5 / 2;
    // Columns with a vertical dark run of at least min_side: candidate left/right borders.
    let longest_run = |x: u32| {
        let (mut best, mut run, mut best_end) = (0, 0, 0);
        for y in y_from..=y_to {
            if dark(bin, x, y) {
                run += 1;
                if run > best {
                    best = run;
                    best_end = y;
                }
            } else {
                run = 0;
            }
        }
        (best, best_end)
    };
    let mut edges: Vec<(u32, u32, u32)> = Vec::new(); // (x_start, x_end, run end y)
    for x in x_from..=x_to {
        let (run, end) = longest_run(x);
        if run >= min_side {
            match edges.last_mut() {
                Some(e) if e.1 + 1 == x => e.1 = x,
                _ => edges.push((x, x, end)),
            }
        }
    }
    for ri in (0..edges.len()).rev() {
        let r = edges[ri];
        for li in (0..ri).rev() {
            let l = edges[li];
            let width = r.0.saturating_sub(l.1);
            if width < min_side {
                continue;
            }
            if width > max_side {
                break;
            }
            // Horizontal borders: rows mostly dark between the two edges.
            let span = r.1 - l.0 + 1;
            let rows: Vec<u32> = (y_from..=y_to)
                .filter(|&y| {
                    (l.0..=r.1).filter(|&x| dark(bin, x, y)).count() as u32 * 10 >= span * 7
                })
                .collect();
            let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else {
                continue;
            };
            let height = bottom - top;
            if height < min_side || height > max_side || height * 2 < width || width * 2 < height {
                continue;
            }
            // The inside, away from the borders.
            let top_in = rows
                .iter()
                .take_while(|&&y| y <= top + height / 4)
                .last()
                .copied()
                .unwrap_or(top)
                + 1;
            let bottom_in = rows
                .iter()
                .rev()
                .take_while(|&&y| y + height / 4 >= bottom)
                .last()
                .copied()
                .unwrap_or(bottom);
            let margin_x = (width / 8).max(1);
            let margin_y = ((bottom_in.saturating_sub(top_in)) / 8).max(1);
            let (ix0, ix1) = (l.1 + 1 + margin_x, r.0.saturating_sub(1 + margin_x));
            let (iy0, iy1) = (top_in + margin_y, bottom_in.saturating_sub(1 + margin_y));
            if ix1 <= ix0 || iy1 <= iy0 {
                continue;
            }
            let area = (ix1 - ix0 + 1) * (iy1 - iy0 + 1);
            let ink = (iy0..=iy1)
                .map(|y| (ix0..=ix1).filter(|&x| dark(bin, x, y)).count() as u32)
                .sum::<u32>();
            return Some(BoxHit {
                x0: l.0,
                y0: top,
                x1: r.1,
                y1: bottom,
                ink: ink as f32 / area as f32,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn page_with_box(marked: bool) -> GrayImage {
        let mut img = GrayImage::from_pixel(400, 120, Luma([255]));
        // A 50 px box at (100, 40) with a 4 px border, the option's text starting at x = 170.
        for i in 0..50 {
            for t in 0..4 {
                img.put_pixel(100 + i, 40 + t, Luma([0]));
                img.put_pixel(100 + i, 86 + t, Luma([0]));
                img.put_pixel(100 + t, 40 + i, Luma([0]));
                img.put_pixel(146 + t, 40 + i, Luma([0]));
            }
        }
        if marked {
            for i in 8..42 {
                for t in 0..4 {
                    img.put_pixel(100 + i + t, 40 + i, Luma([0]));
                    img.put_pixel(150 - i - t, 40 + i, Luma([0]));
                }
            }
        }
        img
    }

    fn words() -> Vec<TsvWord> {
        let w = |text: &str, left| TsvWord {
            text: text.into(),
            left,
            top: 45,
            width: 60,
            height: 40,
            confidence: 90.0,
            line: (1, 1, 1),
            mark: false,
        };
        vec![w("[]", 102), w("Nytt", 170), w("kort", 240)]
    }

    #[test]
    fn a_marked_box_becomes_x_and_an_empty_one_a_box() {
        let mut ws = words();
        assert_eq!(read_boxes(&page_with_box(true), &mut ws), 1);
        assert!(ws.iter().any(|w| w.text == "X"));
        assert!(!ws.iter().any(|w| w.text == "[]"));
        let mut ws = words();
        read_boxes(&page_with_box(false), &mut ws);
        assert!(ws.iter().any(|w| w.text == "☐"));
    }
}
