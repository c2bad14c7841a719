//! Reading check boxes on a scan. Tesseract reads a marked box as `X`, `[X]`, garbage or
//! nothing, and an empty one as `[]`, `O` or nothing, so the text alone cannot be trusted. The
//! project's own forms (pdf_writer.rs) print a square box of 11–12 pt right before each option
//! text (0.4 em to its left, on the text line: Fillable, Table, SameLine choices) or, for a lone
//! Ja/Nej box in the Table layout, under its label. We find that square next to the option's
//! words, measure the ink inside it, and put a clean token (`X` or `☐`) in place of whatever
//! Tesseract read there, so the layout reader sees the mark as in a text layer.

use image::GrayImage;

use super::tesseract::TsvWord;
use crate::forms::labels::{fold, near_option};
use crate::forms::spec::{FieldType, FormKind};
use crate::imaging::{box_left_of, find_box, BoxHit};

/// Share of the box's inside covered by ink above which it counts as marked. An empty box reads
/// 0–2 % (noise, a stroke of the border), a printed `X` or a drawn cross 15–35 %.
const MARKED_SHARE: f32 = 0.07;

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

/// A box under a label (the Ja/Nej cell of the Table layout).
fn box_below(bin: &GrayImage, w: &TsvWord, h: u32) -> Option<BoxHit> {
    let y_from = w.top + w.height + 1;
    let y_to = (y_from + h * 3).min(bin.height().saturating_sub(1));
    let x_from = w.left.saturating_sub(h);
    let x_to = (w.left + h * 3).min(bin.width().saturating_sub(1));
    find_box(bin, x_from, x_to, y_from, y_to, h)
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
