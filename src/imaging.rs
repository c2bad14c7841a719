//! Pixel-level helpers shared by OCR (`ocr::marks`, `ocr::prep`) and the layout reader
//! (`forms::ink`): what counts as ink, and finding a drawn check box next to a text and the ink
//! inside it. A leaf: it depends on the `image` crate only.

use image::GrayImage;

/// Dark pixels are below this after light correction.
pub const INK: u8 = 128;

/// A found box in pixels: left, top, right, bottom (inclusive border).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BoxHit {
    pub(crate) x0: u32,
    pub(crate) y0: u32,
    pub(crate) x1: u32,
    pub(crate) y1: u32,
    pub(crate) ink: f32,
}

fn dark(bin: &GrayImage, x: u32, y: u32) -> bool {
    x < bin.width() && y < bin.height() && bin.get_pixel(x, y).0[0] < INK
}

/// A square box ending just left of `left`, vertically around a text line at `top` of height `h`.
pub(crate) fn box_left_of(bin: &GrayImage, left: u32, top: u32, h: u32) -> Option<BoxHit> {
    let x_from = left.saturating_sub(h * 3);
    let x_to = left.saturating_sub(1);
    let y_from = top.saturating_sub(h * 3 / 4);
    let y_to = (top + h + h * 3 / 4).min(bin.height().saturating_sub(1));
    find_box(bin, x_from, x_to, y_from, y_to, h)
}

/// Like [`box_left_of`], where a rule above or under the box (a cell's border, an underline)
/// may lie within the window: the box's top and bottom are then the two dark rows whose
/// distance is closest to its width.
pub(crate) fn square_box_left_of(bin: &GrayImage, left: u32, top: u32, h: u32) -> Option<BoxHit> {
    let x_from = left.saturating_sub(h * 3);
    let x_to = left.saturating_sub(1);
    let y_from = top.saturating_sub(h * 3 / 4);
    let y_to = (top + h + h * 3 / 4).min(bin.height().saturating_sub(1));
    find_box_in(bin, [x_from, x_to, y_from, y_to], h, true)
}

/// The share of ink inside a square box right before a text at `left`, `top` of height `h`
/// (pixels), if there is one: for a lone check box drawn before its label on a text PDF.
pub fn ink_in_box_before(bin: &GrayImage, left: u32, top: u32, h: u32) -> Option<f32> {
    box_left_of(bin, left, top, h).map(|b| b.ink)
}

/// The rightmost square of side 0.7h–2.5h whose four borders are dark lines, within the window.
pub(crate) fn find_box(
    bin: &GrayImage,
    x_from: u32,
    x_to: u32,
    y_from: u32,
    y_to: u32,
    h: u32,
) -> Option<BoxHit> {
    find_box_in(bin, [x_from, x_to, y_from, y_to], h, false)
}

/// A filled square (a box blacked in as its mark): a run of dark columns `cols` as wide as a
/// box, dark from one row to another as far apart as it is wide.
fn filled_square(
    bin: &GrayImage,
    cols: (u32, u32, u32),
    rows: [u32; 2],
    min_side: u32,
    max_side: u32,
) -> Option<BoxHit> {
    let width = cols.1 - cols.0 + 1;
    if width < min_side || width > max_side {
        return None;
    }
    // Rows dark across (nearly) all of the columns, and the longest run of them.
    let full =
        |y: u32| (cols.0..=cols.1).filter(|&x| dark(bin, x, y)).count() as u32 * 10 >= width * 9;
    let (mut best, mut run_start, mut best_top) = (0u32, None, 0u32);
    for y in rows[0]..=rows[1] {
        match (full(y), run_start) {
            (true, None) => run_start = Some(y),
            (false, Some(start)) => {
                if y - start > best {
                    (best, best_top) = (y - start, start);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        if rows[1] + 1 - start > best {
            (best, best_top) = (rows[1] + 1 - start, start);
        }
    }
    let squarish = best * 10 >= width * 7 && best * 10 <= width * 13;
    (best >= min_side && squarish).then_some(BoxHit {
        x0: cols.0,
        y0: best_top,
        x1: cols.1,
        y1: best_top + best - 1,
        ink: 1.0,
    })
}

/// `find_box`; `square`: the top and bottom are the dark rows closest to a square (see
/// `square_box_left_of`), else the first and the last.
fn find_box_in(bin: &GrayImage, window: [u32; 4], h: u32, square: bool) -> Option<BoxHit> {
    let [x_from, x_to, y_from, y_to] = window;
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
        if square {
            if let Some(hit) = filled_square(bin, r, [y_from, y_to], min_side, max_side) {
                return Some(hit);
            }
        }
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
            // Whether both sides run down from `a` to `b`: a box's own rows, not its bottom and
            // a rule under it (a cell's or a section's), which its sides do not reach.
            let sides_span = |a: u32, b: u32| {
                let side = |cols: (u32, u32), y: u32| (cols.0..=cols.1).any(|x| dark(bin, x, y));
                let covered = (a..=b)
                    .filter(|&y| side((l.0, l.1), y) && side((r.0, r.1), y))
                    .count() as u32;
                covered * 10 >= (b - a + 1) * 8
            };
            let pair = match square {
                true => rows
                    .iter()
                    .flat_map(|&a| rows.iter().filter(move |&&b| b > a).map(move |&b| (a, b)))
                    .filter(|&(a, b)| sides_span(a, b))
                    .min_by_key(|&(a, b)| (b - a).abs_diff(width)),
                false => rows.first().copied().zip(rows.last().copied()),
            };
            let Some((top, bottom)) = pair else {
                continue;
            };
            let rows: Vec<u32> = rows
                .into_iter()
                .filter(|&y| y >= top && y <= bottom)
                .collect();
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

    /// A white page with a box 24 px wide and `height` high at (100, 100), 2 px frame:
    /// outlined or filled; and a rule across the page at `rule`.
    fn page(fill: bool, height: u32, rule: Option<u32>) -> GrayImage {
        let mut img = GrayImage::from_pixel(400, 240, image::Luma([255]));
        let bottom = 100 + height - 1;
        for y in 100..=bottom {
            for x in 100..124 {
                let edge = !(102..=121).contains(&x) || y < 102 || y + 2 > bottom;
                if fill || edge {
                    img.put_pixel(x, y, image::Luma([0]));
                }
            }
        }
        if let Some(y) = rule {
            for x in 0..400 {
                img.put_pixel(x, y, image::Luma([0]));
            }
        }
        img
    }

    #[test]
    fn a_box_is_found_outlined_or_filled_and_not_with_a_rule_under_it() {
        // The option's text begins at x = 130, its top at y = 102, 24 px high.
        let empty = square_box_left_of(&page(false, 24, None), 130, 102, 24).unwrap();
        assert_eq!((empty.x0, empty.x1), (100, 123));
        assert!((100..=101).contains(&empty.y0) && (122..=123).contains(&empty.y1));
        let filled = square_box_left_of(&page(true, 24, None), 130, 102, 24).unwrap();
        assert_eq!(
            (filled.x0, filled.y0, filled.x1, filled.y1),
            (100, 100, 123, 123)
        );
        assert!(filled.ink > 0.9);
        // A box a little lower than wide, a rule under it as far below as the box is wide:
        // its bottom edge and the rule are closer to a square than the box, but its sides do
        // not reach the rule.
        let ruled = square_box_left_of(&page(false, 20, Some(140)), 130, 102, 24).unwrap();
        assert!(ruled.y1 <= 119, "{:?}", (ruled.y0, ruled.y1));
    }
}
