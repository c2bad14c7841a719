//! A phone photo of a form: the sheet lies on a darker desk, seen at an angle. Before anything
//! else the sheet is found (the largest bright region of a small copy, Otsu's threshold) and,
//! when the desk shows around it, its four corners are warped to a flat rectangle
//! (`imageproc`'s projective warp), so that the rest of the reading sees a scan. A scan, a fax
//! or a PDF page (the paper fills the image) is left as it is.

use image::{imageops, GrayImage, Luma};
use imageproc::contrast::otsu_level;
use imageproc::geometric_transformations::{warp_into, Interpolation, Projection};
use imageproc::region_labelling::{connected_components, Connectivity};

/// Long side of the copy the sheet is looked for in.
const PROBE: u32 = 480;
/// Above this share of the image inside the sheet's corners, the paper fills the image.
const FILLS: f32 = 0.90;
/// Below this share, the bright region is no sheet (a label, a reflection).
const TOO_SMALL: f32 = 0.20;

/// The sheet warped flat, when the image is a photo of one; `None` for anything else.
pub fn flatten_sheet(img: &GrayImage) -> Option<GrayImage> {
    let (w, h) = img.dimensions();
    if w < 200 || h < 200 {
        return None;
    }
    let f = PROBE as f32 / w.max(h) as f32;
    let (sw, sh) = (
        ((w as f32 * f) as u32).max(1),
        ((h as f32 * f) as u32).max(1),
    );
    let small = imageops::resize(img, sw, sh, imageops::FilterType::Triangle);
    let level = otsu_level(&small);
    // Paper against desk: the two must differ clearly, or there is no desk in view.
    let mask = GrayImage::from_fn(sw, sh, |x, y| {
        Luma([if small.get_pixel(x, y).0[0] > level {
            255
        } else {
            0
        }])
    });
    let labels = connected_components(&mask, Connectivity::Four, Luma([0u8]));
    let mut sizes: Vec<u32> = Vec::new();
    for p in labels.pixels() {
        let l = p.0[0] as usize;
        if l == 0 {
            continue;
        }
        if sizes.len() <= l {
            sizes.resize(l + 1, 0);
        }
        sizes[l] += 1;
    }
    let (best, _) = sizes
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| **n > 0)?;
    // The corners: the extreme points along the two diagonals.
    let (mut tl, mut tr, mut br, mut bl) = (
        (0.0f32, 0.0f32, f32::MAX),
        (0.0, 0.0, f32::MIN),
        (0.0, 0.0, f32::MIN),
        (0.0, 0.0, f32::MIN),
    );
    for (x, y, p) in labels.enumerate_pixels() {
        if p.0[0] as usize != best {
            continue;
        }
        let (x, y) = (x as f32, y as f32);
        if x + y < tl.2 {
            tl = (x, y, x + y);
        }
        if x - y > tr.2 {
            tr = (x, y, x - y);
        }
        if x + y > br.2 {
            br = (x, y, x + y);
        }
        if y - x > bl.2 {
            bl = (x, y, y - x);
        }
    }
    let quad = [(tl.0, tl.1), (tr.0, tr.1), (br.0, br.1), (bl.0, bl.1)];
    let share = polygon_area(&quad) / (sw as f32 * sh as f32);
    if !(TOO_SMALL..FILLS).contains(&share) || !convex(&quad) {
        return None;
    }
    // What lies outside the corners must be desk (mostly dark), not more paper: a table's
    // large cell on a scan is no sheet.
    let (mut outside, mut bright_outside) = (0u32, 0u32);
    for (x, y, p) in small.enumerate_pixels() {
        if !inside(&quad, x as f32, y as f32) {
            outside += 1;
            bright_outside += u32::from(p.0[0] > level);
        }
    }
    if outside == 0 || bright_outside as f32 > outside as f32 * 0.25 {
        return None;
    }
    let dist = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let width = dist(quad[0], quad[1]).max(dist(quad[3], quad[2])) / f;
    let height = dist(quad[0], quad[3]).max(dist(quad[1], quad[2])) / f;
    if width < 200.0 || height < 200.0 {
        return None;
    }
    // A sheet seen nearly square on (a photo taken from above, a scan with a dark border) is
    // left to the deskew, which reads it as well without the resampling.
    if !foreshortened(&quad) {
        return None;
    }
    let from = quad.map(|(x, y)| ((x + 0.5) / f, (y + 0.5) / f));
    let (ow, oh) = (width as u32, height as u32);
    let to = [
        (0.0, 0.0),
        (ow as f32, 0.0),
        (ow as f32, oh as f32),
        (0.0, oh as f32),
    ];
    let projection = Projection::from_control_points(from, to)?;
    let mut out = GrayImage::new(ow, oh);
    warp_into(
        img,
        &projection,
        Interpolation::Bilinear,
        Luma([255]),
        &mut out,
    );
    Some(out)
}

/// Whether the quadrilateral is visibly a rectangle seen at an angle: a corner off a right
/// angle by more than 3°, or opposite sides differing by more than 5 %.
fn foreshortened(q: &[(f32, f32); 4]) -> bool {
    let len = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let sides: Vec<f32> = (0..4).map(|i| len(q[i], q[(i + 1) % 4])).collect();
    let ratio = |a: f32, b: f32| a.min(b) / a.max(b).max(1e-3);
    if ratio(sides[0], sides[2]) < 0.95 || ratio(sides[1], sides[3]) < 0.95 {
        return true;
    }
    (0..4).any(|i| {
        let (a, b, c) = (q[(i + 3) % 4], q[i], q[(i + 1) % 4]);
        let (u, v) = ((a.0 - b.0, a.1 - b.1), (c.0 - b.0, c.1 - b.1));
        let cos = (u.0 * v.0 + u.1 * v.1) / (len(a, b) * len(c, b)).max(1e-3);
        cos.abs() > (87.0f32).to_radians().cos()
    })
}

/// Whether (x, y) is inside the convex quadrilateral (either winding).
fn inside(q: &[(f32, f32); 4], x: f32, y: f32) -> bool {
    let side = |i: usize| {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
    };
    let s: Vec<f32> = (0..4).map(side).collect();
    s.iter().all(|v| *v >= -1.0) || s.iter().all(|v| *v <= 1.0)
}

/// Area of a simple polygon (shoelace formula).
fn polygon_area(p: &[(f32, f32)]) -> f32 {
    let n = p.len();
    (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f32>()
        .abs()
        / 2.0
}

/// Whether the four corners, in order, make a convex quadrilateral.
fn convex(p: &[(f32, f32); 4]) -> bool {
    let cross = |i: usize| {
        let (a, b, c) = (p[i], p[(i + 1) % 4], p[(i + 2) % 4]);
        (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0)
    };
    let signs: Vec<bool> = (0..4).map(|i| cross(i) > 0.0).collect();
    signs.iter().all(|s| *s) || signs.iter().all(|s| !*s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white sheet with a black bar of "text", seen at an angle on a grey desk.
    fn photo() -> GrayImage {
        let (w, h) = (900u32, 1200u32);
        let quad = [
            (150.0f32, 100.0f32),
            (780.0, 160.0),
            (820.0, 1100.0),
            (90.0, 1050.0),
        ];
        GrayImage::from_fn(w, h, |x, y| {
            let (x, y) = (x as f32, y as f32);
            let inside = (0..4).all(|i| {
                let (a, b) = (quad[i], quad[(i + 1) % 4]);
                (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0) >= 0.0
            });
            if !inside {
                Luma([70])
            } else if (500.0..520.0).contains(&y) && (300.0..600.0).contains(&x) {
                Luma([10])
            } else {
                Luma([235])
            }
        })
    }

    #[test]
    fn a_sheet_on_a_desk_is_warped_flat() {
        let flat = flatten_sheet(&photo()).expect("a photo of a sheet");
        let (w, h) = flat.dimensions();
        assert!(
            (600..=760).contains(&w) && (900..=1000).contains(&h),
            "{w}x{h}"
        );
        // The corners are paper now, not desk.
        for (x, y) in [(5, 5), (w - 6, 5), (5, h - 6), (w - 6, h - 6)] {
            assert!(flat.get_pixel(x, y).0[0] > 150, "corner {x},{y}");
        }
    }

    #[test]
    fn a_scan_is_left_alone() {
        let scan = GrayImage::from_fn(850, 1100, |x, y| {
            Luma([if (500..520).contains(&y) && (100..700).contains(&x) {
                0
            } else {
                250
            }])
        });
        assert!(flatten_sheet(&scan).is_none());
        assert!(flatten_sheet(&GrayImage::from_pixel(100, 100, Luma([255]))).is_none());
    }
}
