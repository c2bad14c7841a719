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
