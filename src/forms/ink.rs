//! Check marks decided from the ink around each option (SPEC §2.1, §2.2), wherever the option's
//! text is: a box of any size before it holding an `X`, a tick or a fill, `[X]` in brackets, a
//! cross drawn over the box, or a ring drawn around the option's text. Serves scans (the page
//! image OCR read) and text PDFs whose marks are drawn as graphics, not text (the page rendered).
//!
//! The options of one field are compared with each other: their empty boxes or brackets carry
//! the same ink, so the marked one is the one with clearly more. A small difference is not
//! guessed at: the reading is then uncertain and the case goes to staff (SPEC §4.4).

use std::sync::Arc;

use image::GrayImage;

/// A page image for reading marks, and its scale.
#[derive(Clone)]
pub struct InkImage {
    pub image: Arc<GrayImage>,
    /// Pixels per point (dpi / 72).
    pub px_per_pt: f32,
}

impl std::fmt::Debug for InkImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InkImage({}x{} px, {:.2} px/pt)",
            self.image.width(),
            self.image.height(),
            self.px_per_pt
        )
    }
}

/// A rectangle in points, origin top left: x0, y0, x1, y1.
pub type Rect = [f32; 4];

/// Which options are marked, and whether the reading is clear.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkReading {
    pub marked: Vec<usize>,
    pub certain: bool,
}

/// Pixels darker than this are ink.
const INK: u8 = 150;
/// Extra ink (in squared text heights) before an option, above the least inked option of the
/// field, from which it counts as marked; below `CLEAR` and above `FAINT` it is unclear.
const CLEAR: f32 = 0.16;
const FAINT: f32 = 0.06;
/// Extra ink above `FAINT`, as a share of the least inked option's, from which it is a mark.
const RELATIVE: f32 = 0.2;

/// Decides the marks of one field's options. `options` are the options' text boxes;
/// `text` are all word boxes of the page (their ink is not a mark).
pub fn read_marks(ink: &InkImage, options: &[Rect], text: &[Rect]) -> MarkReading {
    let cleared: Vec<Rect> = options
        .iter()
        .map(|o| {
            // Where the word that holds the option starts (before it when OCR glued the box
            // to it: `Mja`).
            let word_start = text
                .iter()
                .filter(|t| t[0] <= o[0] + 0.5 && t[2] >= o[2] - 0.5 && t[1] < o[3] && t[3] > o[1])
                .map(|t| t[0])
                .fold(o[0], f32::min);
            clear_of_box(ink, o, word_start)
        })
        .collect();
    // A word that OCR read across a box and its option (`☒ Ja` as `Ja`, `■ Ja` as `Mja`) is
    // text only from the option on: the box and its mark before it are not letters.
    let text: Vec<Rect> = text
        .iter()
        .map(|t| {
            let mut t = *t;
            for c in &cleared {
                let h = c[3] - c[1];
                let own_word = t[0] < c[0] && t[2] > c[0] && t[2] <= c[2] + 0.5 * h;
                if own_word && t[1] < c[3] && t[3] > c[1] {
                    t[0] = c[0];
                }
            }
            t
        })
        .collect();
    let text = &text[..];
    let options = &cleared[..];
    // One text height for all of the field's options, so that their zones are alike: a word's
    // box is taller with a descender (`Förnyelse`) or an accent, and the boxes before the
    // options are not.
    let mut heights: Vec<f32> = options.iter().map(|o| (o[3] - o[1]).max(4.0)).collect();
    heights.sort_by(f32::total_cmp);
    let h = heights.get(heights.len() / 2).copied().unwrap_or(4.0);
    // Printed boxes before every option: the ink inside them decides when it is clear (an
    // empty box is white inside, whatever the scan does to its frame and the rules around it).
    if let Some(reading) = read_boxes(ink, options, h) {
        return reading;
    }
    let mut scores: Vec<(f32, bool)> = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                ink_before(ink, o, h, text),
                ringed(ink, o) || enclosed(ink, options, i),
            )
        })
        .collect();
    let least = scores.iter().map(|s| s.0).fold(f32::INFINITY, f32::min);
    let mut marked = Vec::new();
    let mut certain = options.len() >= 2;
    // No ring drawn by hand, and not certain: every option inside a closed line (the cells of
    // a table), or a mark in front of another option (clearly more ink there) where a line
    // closes round one (a cell's corner or a box's frame round a plain option).
    let every_option_ringed = scores.len() >= 2 && scores.iter().all(|s| s.1);
    let inked_elsewhere = scores.iter().any(|s| !s.1 && s.0 - least >= CLEAR);
    if every_option_ringed || (inked_elsewhere && scores.iter().any(|s| s.1)) {
        scores.iter_mut().for_each(|s| s.1 = false);
        certain = false;
    }
    // A small mark in a box (a thin ✗ in a printed ☐) adds less ink than CLEAR, but still a
    // fifth or more over the empty boxes beside it: it counts when it is the only option with
    // more ink than FAINT and no option is clearly marked.
    let over = |v: f32| scores.iter().filter(|s| s.0 - least >= v).count();
    // (Options that share a table's cell are no less clear for it.)
    let weak_alone =
        options.len() >= 2 && over(FAINT) == 1 && over(CLEAR) == 0 && !scores.iter().any(|s| s.1);
    for (i, (before, ring)) in scores.iter().enumerate() {
        let extra = before - least;
        let weak = weak_alone && extra >= FAINT && extra >= RELATIVE * least;
        if *ring || extra >= CLEAR || weak {
            marked.push(i);
        } else if extra >= FAINT {
            certain = false;
        }
    }
    // All options inked alike and heavily: all marked, or all empty boxes of a heavy print —
    // not to be told apart from the ink alone.
    if marked.is_empty() && options.len() >= 2 && least >= 0.9 {
        certain = false;
    }
    MarkReading { marked, certain }
}

/// Ink in the middle of a box (its central half each way, clear of a frame however thick or
/// blurred): at most this when empty, at least `BOX_MARKED` when a mark crosses it (an `X`, a
/// tick's stroke, a fill); between the two the box is unclear and the zone around it decides.
const BOX_EMPTY: f32 = 0.03;
const BOX_MARKED: f32 = 0.08;

/// The marks read from the middle of a drawn box before each option, when every option has
/// one, every box is clearly empty or clearly marked, and one at least is marked (a ring
/// around an option's text leaves its box empty: the zone reading sees it).
fn read_boxes(ink: &InkImage, options: &[Rect], h: f32) -> Option<MarkReading> {
    if options.len() < 2 {
        return None;
    }
    let px = |v: f32| to_px(ink, v).max(0) as u32;
    let inks: Vec<f32> = options
        .iter()
        .map(|o| {
            crate::imaging::square_box_left_of(&ink.image, px(o[0]), px(o[1]), px(0.75 * h).max(6))
                .map(|b| middle_ink(ink, b.x0, b.y0, b.x1, b.y1))
        })
        .collect::<Option<_>>()?;
    let marked: Vec<usize> = (0..inks.len()).filter(|&i| inks[i] >= BOX_MARKED).collect();
    let unclear = inks.iter().any(|&v| v > BOX_EMPTY && v < BOX_MARKED);
    match (marked.as_slice(), unclear) {
        ([], _) => None,
        (_, false) => Some(MarkReading {
            marked,
            certain: true,
        }),
        // One box clearly filled or crossed, the others a little grey (a fax's noise, a
        // copier's toner): that one, but not for certain.
        ([one], true) if inks[*one] >= 2.0 * BOX_MARKED => Some(MarkReading {
            marked,
            certain: false,
        }),
        _ => None,
    }
}

/// The share of dark pixels in the central half (each way) of the box with outer corners
/// `x0, y0` and `x1, y1`: clear of its frame, however thick or blurred.
fn middle_ink(ink: &InkImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f32 {
    let (w, h) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    let (mx0, mx1) = (x0 + w / 4, x1.saturating_sub(w / 4));
    let (my0, my1) = (y0 + h / 4, y1.saturating_sub(h / 4));
    if mx1 <= mx0 || my1 <= my0 {
        return 0.0;
    }
    let dark = (my0..=my1)
        .flat_map(|y| (mx0..=mx1).map(move |x| (x, y)))
        .filter(|&(x, y)| dark(&ink.image, x as i64, y as i64))
        .count();
    dark as f32 / ((mx1 - mx0 + 1) * (my1 - my0 + 1)) as f32
}

/// A lone box before a label (`☒ Klippt kort mottaget`, drawn): `Some(marked)` when a box is
/// there, with whether the reading is clear.
pub fn lone_box(ink: &InkImage, label: &Rect) -> Option<(bool, bool)> {
    let h = ((label[3] - label[1]) * ink.px_per_pt).max(6.0) as u32;
    let share = crate::imaging::ink_in_box_before(
        &ink.image,
        to_px(ink, label[0]).max(0) as u32,
        to_px(ink, label[1]).max(0) as u32,
        h,
    )?;
    Some((share >= 0.07, !(0.03..0.12).contains(&share)))
}

fn to_px(ink: &InkImage, v: f32) -> i64 {
    (v * ink.px_per_pt).round() as i64
}

fn dark(img: &GrayImage, x: i64, y: i64) -> bool {
    x >= 0
        && y >= 0
        && (x as u32) < img.width()
        && (y as u32) < img.height()
        && img.get_pixel(x as u32, y as u32).0[0] < INK
}

/// The option's text box without a drawn check box that OCR took into the word (`☒ Ja` read
/// as one word `Ja`): the box is then before the option, where its mark is looked for.
fn clear_of_box(ink: &InkImage, option: &Rect, word_start: f32) -> Rect {
    let h = (option[3] - option[1]).max(4.0);
    let px = |v: f32| to_px(ink, v).max(0) as u32;
    let found = crate::imaging::find_box(
        &ink.image,
        px(option[0] - 0.5 * h),
        px(option[0] + 1.5 * h).min(px(option[2])),
        px(option[1] - 0.4 * h),
        px(option[3] + 0.4 * h),
        px(h * 0.75).max(6),
    );
    match found {
        // A box inside the word, from its start: one that begins before the word is the
        // option's own box beside it, which a letter's stem (`F`) has made look wider.
        // Only short options (`Ja`, `Nej`) vanish into a box that way: in a longer word, the
        // stems and bowls of its letters (`Fö`) can look like one.
        Some(b)
            if (b.x1 as f32) / ink.px_per_pt > option[0] + 0.1 * h
                && (b.x0 as f32) / ink.px_per_pt >= word_start - 0.1 * h
                && option[2] - option[0] < 3.0 * h =>
        {
            // Past the gap that `ink_before` leaves before the text, so that the box's right
            // side is in its zone.
            let x0 = (b.x1 + 1) as f32 / ink.px_per_pt + 0.08 * h;
            if x0 + h * 0.5 < option[2] {
                [x0, option[1], option[2], option[3]]
            } else {
                *option
            }
        }
        _ => *option,
    }
}

/// Ink in the zone before an option's text (where its box, brackets or mark are), outside any
/// word's box, in squared text heights.
fn ink_before(ink: &InkImage, option: &Rect, h: f32, text: &[Rect]) -> f32 {
    let centre = (option[1] + option[3]) / 2.0;
    let zone = [
        option[0] - 2.3 * h,
        centre - 0.8 * h,
        option[0] - 0.08 * h,
        centre + 0.8 * h,
    ];
    // Words in the zone that hold letters (the end of the option before) are not marks.
    let words: Vec<&Rect> = text
        .iter()
        .filter(|w| w[2] > zone[0] && w[0] < zone[2] && w[3] > zone[1] && w[1] < zone[3])
        .filter(|w| (w[2] - w[0]) > h * 1.2)
        .collect();
    let img = &ink.image;
    let (zx0, zy0, zx1, zy1) = (
        to_px(ink, zone[0]),
        to_px(ink, zone[1]),
        to_px(ink, zone[2]),
        to_px(ink, zone[3]),
    );
    // A table's rules that cross the zone (a cell's border beside or under the options) run on
    // beyond it; a box's sides and a mark do not. Their ink is not counted.
    let reach = to_px(ink, 0.5 * h);
    let share = |n: usize, of: i64| n as f32 >= 0.9 * of.max(1) as f32;
    let rule_columns: Vec<i64> = (zx0..=zx1)
        .filter(|&x| {
            share(
                (zy0 - reach..=zy1 + reach)
                    .filter(|&y| dark(img, x, y))
                    .count(),
                zy1 - zy0 + 2 * reach + 1,
            )
        })
        .collect();
    let rule_rows: Vec<i64> = (zy0..=zy1)
        .filter(|&y| {
            share(
                (zx0 - 2 * reach..=zx1).filter(|&x| dark(img, x, y)).count(),
                zx1 - zx0 + 2 * reach + 1,
            )
        })
        .collect();
    let near = |v: i64, set: &[i64]| set.iter().any(|s| (s - v).abs() <= 1);
    let mut count = 0u32;
    for y in zy0..=zy1 {
        for x in zx0..=zx1 {
            if !dark(img, x, y) || near(x, &rule_columns) || near(y, &rule_rows) {
                continue;
            }
            let (px, py) = (x as f32 / ink.px_per_pt, y as f32 / ink.px_per_pt);
            if words
                .iter()
                .any(|w| px >= w[0] && px <= w[2] && py >= w[1] && py <= w[3])
            {
                continue;
            }
            count += 1;
        }
    }
    let h_px = h * ink.px_per_pt;
    count as f32 / (h_px * h_px)
}

/// Whether a ring is drawn around the option's text: ink close above and close below along most
/// of the text, at heights that vary (an arc), not one straight rule.
fn ringed(ink: &InkImage, option: &Rect) -> bool {
    let h = (option[3] - option[1]).max(4.0);
    let img = &ink.image;
    let (x0, x1) = (to_px(ink, option[0]), to_px(ink, option[2]));
    if x1 - x0 < 4 {
        return false;
    }
    let band = |from: f32, to: f32| -> Vec<Option<i64>> {
        (x0..=x1)
            .map(|x| (to_px(ink, from)..=to_px(ink, to)).find(|&y| dark(img, x, y)))
            .collect()
    };
    let above = band(option[1] - 0.75 * h, option[1] - 0.02 * h);
    let below = band(option[3] + 0.02 * h, option[3] + 0.75 * h);
    let width = (x1 - x0 + 1) as f32;
    let covered = |b: &[Option<i64>]| b.iter().flatten().count() as f32 / width;
    let curved = |b: &[Option<i64>]| {
        let ys: Vec<i64> = b.iter().flatten().copied().collect();
        let (lo, hi) = (ys.iter().min(), ys.iter().max());
        matches!((lo, hi), (Some(lo), Some(hi)) if (hi - lo) as f32 >= 0.12 * h * ink.px_per_pt)
    };
    covered(&above) >= 0.6 && covered(&below) >= 0.6 && (curved(&above) || curved(&below))
}

/// Whether one connected line of ink closes around the option's text: a ring drawn by hand, of
/// any shape, as long as it is small (a table's rules run on beyond the neighbourhood and do not
/// count), and holds no other option (a cell round all the options is no mark). The ring may
/// touch or cross the letters.
fn enclosed(ink: &InkImage, options: &[Rect], which: usize) -> bool {
    let option = &options[which];
    let h = (option[3] - option[1]).max(4.0);
    let img = &ink.image;
    let (ox0, oy0, ox1, oy1) = (
        to_px(ink, option[0]),
        to_px(ink, option[1]),
        to_px(ink, option[2]),
        to_px(ink, option[3]),
    );
    // The neighbourhood a ring fits in; a component reaching its edge is not a ring.
    let (rx0, ry0, rx1, ry1) = (
        to_px(ink, option[0] - 3.0 * h).max(0),
        to_px(ink, option[1] - 2.0 * h).max(0),
        to_px(ink, option[2] + 3.0 * h).min(img.width() as i64 - 1),
        to_px(ink, option[3] + 2.0 * h).min(img.height() as i64 - 1),
    );
    if rx1 <= rx0 || ry1 <= ry0 || ox1 <= ox0 {
        return false;
    }
    let (w, hgt) = ((rx1 - rx0 + 1) as usize, (ry1 - ry0 + 1) as usize);
    let mut seen = vec![false; w * hgt];
    let idx = |x: i64, y: i64| (y - ry0) as usize * w + (x - rx0) as usize;
    let margin = (0.1 * h * ink.px_per_pt).max(1.0) as i64;
    // Seeds: the ink on the row through the middle of the text, left and right of it.
    let mid = (oy0 + oy1) / 2;
    let seeds = (rx0..ox0)
        .chain(ox1 + 1..=rx1)
        .filter(|&x| dark(img, x, mid));
    let mut stack = Vec::new();
    for seed in seeds {
        if seen[idx(seed, mid)] {
            continue;
        }
        seen[idx(seed, mid)] = true;
        stack.push((seed, mid));
        let (mut bx0, mut by0, mut bx1, mut by1) = (seed, mid, seed, mid);
        let mut open = false;
        while let Some((x, y)) = stack.pop() {
            (bx0, by0, bx1, by1) = (bx0.min(x), by0.min(y), bx1.max(x), by1.max(y));
            if x == rx0 || x == rx1 || y == ry0 || y == ry1 {
                open = true;
            }
            for (dx, dy) in [
                (-1, 0),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (1, 1),
                (-1, 1),
                (1, -1),
            ] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < rx0 || nx > rx1 || ny < ry0 || ny > ry1 || seen[idx(nx, ny)] {
                    continue;
                }
                if dark(img, nx, ny) {
                    seen[idx(nx, ny)] = true;
                    stack.push((nx, ny));
                }
            }
        }
        // Across (nearly) all of the text: a ring may run through the first or last letter.
        let across = (bx1.min(ox1) - bx0.max(ox0)) as f32 >= 0.9 * (ox1 - ox0) as f32;
        if !open && across && by0 < oy0 - margin && by1 > oy1 + margin {
            let holds = |o: &Rect| {
                let (cx, cy) = (
                    to_px(ink, (o[0] + o[2]) / 2.0),
                    to_px(ink, (o[1] + o[3]) / 2.0),
                );
                cx > bx0 && cx < bx1 && cy > by0 && cy < by1
            };
            let others = options.iter().enumerate().filter(|(j, _)| *j != which);
            if !others.map(|(_, o)| o).any(holds) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A 300×100 pt page at 2 px/pt with two options at x = 60 and x = 200, 10 pt high text.
    fn page(draw: impl Fn(&mut GrayImage)) -> InkImage {
        let mut img = GrayImage::from_pixel(600, 200, Luma([255]));
        draw(&mut img);
        InkImage {
            image: Arc::new(img),
            px_per_pt: 2.0,
        }
    }

    fn rect(img: &mut GrayImage, x0: u32, y0: u32, x1: u32, y1: u32, fill: bool) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                if fill || x == x0 || x == x1 || y == y0 || y == y1 {
                    img.put_pixel(x, y, Luma([0]));
                }
            }
        }
    }

    fn line(img: &mut GrayImage, a: (f32, f32), b: (f32, f32)) {
        for i in 0..=200 {
            let t = i as f32 / 200.0;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            for dx in 0..2 {
                img.put_pixel(x as u32 + dx, y as u32, Luma([0]));
            }
        }
    }

    const OPTIONS: [Rect; 2] = [[60.0, 40.0, 110.0, 50.0], [200.0, 40.0, 250.0, 50.0]];

    fn boxes(img: &mut GrayImage) {
        rect(img, 96, 80, 112, 96, false);
        rect(img, 376, 80, 392, 96, false);
    }

    #[test]
    fn empty_boxes_are_empty_and_certain() {
        let r = read_marks(&page(boxes), &OPTIONS, &OPTIONS);
        assert_eq!(
            r,
            MarkReading {
                marked: vec![],
                certain: true
            }
        );
    }

    /// Boxes with heavy frames and the rules of their cell close above and under them, one
    /// with a thin tick in its middle (a ☑ glyph): the middle of the boxes decides, the
    /// frames and rules do not count.
    #[test]
    fn a_thin_tick_in_one_of_heavy_boxes_between_rules_is_read_from_the_boxes_middle() {
        let ticked = page(|img| {
            for x0 in [94, 374] {
                for d in 0..3 {
                    rect(img, x0 + d, 78 + d, x0 + 20 - d, 98 - d, false);
                }
            }
            // The cell's rules, 4 px above and under the boxes, across the page.
            for x in 0..600 {
                img.put_pixel(x, 73, Luma([0]));
                img.put_pixel(x, 103, Luma([0]));
            }
            line(img, (380.0, 89.0), (383.0, 93.0));
            line(img, (383.0, 93.0), (389.0, 83.0));
        });
        let r = read_marks(&ticked, &OPTIONS, &OPTIONS);
        assert_eq!(
            r,
            MarkReading {
                marked: vec![1],
                certain: true
            }
        );
    }

    #[test]
    fn a_cross_a_fill_and_a_tick_are_marks() {
        let cross = page(|img| {
            boxes(img);
            line(img, (96.0, 80.0), (112.0, 96.0));
            line(img, (112.0, 80.0), (96.0, 96.0));
        });
        assert_eq!(read_marks(&cross, &OPTIONS, &OPTIONS).marked, vec![0]);
        let fill = page(|img| {
            boxes(img);
            rect(img, 378, 82, 390, 94, true);
        });
        assert_eq!(read_marks(&fill, &OPTIONS, &OPTIONS).marked, vec![1]);
        // A tick without any box, drawn by hand.
        let tick = page(|img| {
            line(img, (360.0, 88.0), (368.0, 98.0));
            line(img, (368.0, 98.0), (388.0, 72.0));
        });
        assert_eq!(read_marks(&tick, &OPTIONS, &OPTIONS).marked, vec![1]);
    }

    #[test]
    fn a_ring_around_the_text_is_a_mark() {
        let ring = page(|img| {
            boxes(img);
            for i in 0..400 {
                let t = i as f32 / 400.0 * std::f32::consts::TAU;
                let (x, y) = (450.0 + 62.0 * t.cos(), 90.0 + 17.0 * t.sin());
                img.put_pixel(x as u32, y as u32, Luma([0]));
                img.put_pixel(x as u32, y as u32 + 1, Luma([0]));
            }
        });
        assert_eq!(read_marks(&ring, &OPTIONS, &OPTIONS).marked, vec![1]);
    }

    fn ellipse(img: &mut GrayImage, c: (f32, f32), r: (f32, f32)) {
        for i in 0..600 {
            let t = i as f32 / 600.0 * std::f32::consts::TAU;
            let (x, y) = (c.0 + r.0 * t.cos(), c.1 + r.1 * t.sin());
            img.put_pixel(x as u32, y as u32, Luma([0]));
        }
    }

    /// A loop of ink closing round the first option (a cell's corner, a frame) and a cross
    /// drawn before the second one, no box to read: the cross is the mark, the loop is not a
    /// ring, and the reading is not certain.
    #[test]
    fn a_mark_before_one_option_outweighs_a_loop_round_another() {
        let both = page(|img| {
            ellipse(img, (170.0, 90.0), (62.0, 17.0));
            line(img, (370.0, 78.0), (392.0, 100.0));
            line(img, (370.0, 100.0), (392.0, 78.0));
            line(img, (371.0, 78.0), (393.0, 100.0));
            line(img, (371.0, 100.0), (393.0, 78.0));
        });
        let r = read_marks(&both, &OPTIONS, &OPTIONS);
        assert_eq!(r.marked, vec![1], "{r:?}");
        assert!(!r.certain);
    }

    #[test]
    fn a_wide_ring_clear_of_the_text_is_a_mark() {
        // Drawn well above and below the text (further than the arcs are looked for), and
        // reaching into the box before the option.
        let ring = page(|img| {
            boxes(img);
            ellipse(img, (440.0, 90.0), (80.0, 26.0));
        });
        assert_eq!(read_marks(&ring, &OPTIONS, &OPTIONS).marked, vec![1]);
    }

    #[test]
    fn table_cells_around_every_option_are_no_ring() {
        let cells = page(|img| {
            boxes(img);
            rect(img, 90, 70, 230, 110, false);
            rect(img, 370, 70, 510, 110, false);
        });
        let r = read_marks(&cells, &OPTIONS, &OPTIONS);
        assert!(r.marked.is_empty() && !r.certain, "{r:?}");
    }

    #[test]
    fn one_cell_around_all_options_is_no_ring() {
        let cell = page(|img| {
            boxes(img);
            rect(img, 30, 66, 560, 114, false);
        });
        let r = read_marks(&cell, &OPTIONS, &OPTIONS);
        assert!(r.marked.is_empty() && r.certain, "{r:?}");
    }

    #[test]
    fn a_rule_under_the_options_is_no_ring() {
        let ruled = page(|img| {
            boxes(img);
            rect(img, 0, 104, 599, 104, true);
            rect(img, 0, 76, 599, 76, true);
        });
        assert!(read_marks(&ruled, &OPTIONS, &OPTIONS).marked.is_empty());
    }

    #[test]
    fn a_box_that_ocr_read_into_its_short_options_word_is_still_measured() {
        // `☒ Ja` read as one word from the box on; `☐ Nej` with its box outside its word.
        let crossed = page(|img| {
            boxes(img);
            line(img, (97.0, 81.0), (110.0, 94.0));
            line(img, (97.0, 94.0), (110.0, 81.0));
        });
        let ja_word = [47.0, 40.0, 66.0, 50.0];
        let nej = [200.0, 40.0, 218.0, 50.0];
        let r = read_marks(&crossed, &[ja_word, nej], &[ja_word, nej]);
        assert_eq!(r.marked, vec![0]);
        // Both boxes empty: nothing is marked.
        let r = read_marks(&page(boxes), &[ja_word, nej], &[ja_word, nej]);
        assert!(r.marked.is_empty(), "{r:?}");
    }
}
