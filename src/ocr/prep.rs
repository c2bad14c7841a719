//! Cleaning a page image before recognition: even out the light of a phone photo, binarise,
//! drop speckles, straighten a small skew, turn a page that lies sideways or upside down, and
//! erase the ruled lines of the form (Tesseract reads text inside boxes far better without
//! them). Everything works on 8-bit grey images, 0 = black.

use image::{imageops, GrayImage, Luma};

pub use crate::imaging::INK;

/// Evens out uneven light (a phone photo lit from one side, a grey scanner background): each
/// pixel is divided by an estimate of the paper's brightness around it, so paper becomes white
/// everywhere and ink stays dark. The background is the brightest value of coarse blocks,
/// smoothed; text strokes are thin, so they never set a block's maximum.
pub fn flatten_light(img: &GrayImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let block = (w.max(h) / 40).max(8);
    let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
    let mut bg = GrayImage::new(bw, bh);
    for by in 0..bh {
        for bx in 0..bw {
            // The 95th percentile rather than the maximum: a speck of glare must not set it.
            let mut hist = [0u32; 256];
            let mut n = 0;
            for y in by * block..((by + 1) * block).min(h) {
                for x in bx * block..((bx + 1) * block).min(w) {
                    hist[img.get_pixel(x, y).0[0] as usize] += 1;
                    n += 1;
                }
            }
            let mut seen = 0;
            let mut v = 255;
            for (i, c) in hist.iter().enumerate().rev() {
                seen += c;
                if seen * 20 >= n {
                    v = i;
                    break;
                }
            }
            bg.put_pixel(bx, by, Luma([v as u8]));
        }
    }
    // A block entirely covered by a dark area (a logo, a filled box) would make it paper; the
    // 3x3 maximum filter lets neighbouring paper win, then a blur smooths the steps.
    let mut grown = bg.clone();
    for by in 0..bh {
        for bx in 0..bw {
            let mut m = 0;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (x, y) = (bx as i64 + dx, by as i64 + dy);
                    if x >= 0 && y >= 0 && (x as u32) < bw && (y as u32) < bh {
                        m = m.max(bg.get_pixel(x as u32, y as u32).0[0]);
                    }
                }
            }
            grown.put_pixel(bx, by, Luma([m]));
        }
    }
    let smooth = imageops::blur(&grown, 1.0);
    let mut out = GrayImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        // Bilinear sample of the background at the pixel's position.
        let fx = (x as f32 + 0.5) / block as f32 - 0.5;
        let fy = (y as f32 + 0.5) / block as f32 - 0.5;
        let b = bilinear(&smooth, fx, fy).max(40.0);
        let v = img.get_pixel(x, y).0[0] as f32;
        p.0[0] = (v / b * 255.0).clamp(0.0, 255.0) as u8;
    }
    out
}

fn bilinear(img: &GrayImage, fx: f32, fy: f32) -> f32 {
    let (w, h) = img.dimensions();
    let fx = fx.clamp(0.0, (w - 1) as f32);
    let fy = fy.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
    let p = |x, y| img.get_pixel(x, y).0[0] as f32;
    let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
    let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Scales a grey image down to `w` × `h` (not larger than it) by averaging the area each new
/// pixel covers, one axis after the other. It holds the result and one `w` × old-height
/// intermediate, a byte a pixel: the image crate's filters hold a 16-byte float RGBA copy
/// (190 MB to shrink a 16 M pixel page).
pub fn shrink(img: &GrayImage, w: u32, h: u32) -> GrayImage {
    let (sw, sh) = img.dimensions();
    let (w, h) = (w.clamp(1, sw.max(1)), h.clamp(1, sh.max(1)));
    let across = area_weights(sw, w);
    let mut wide = GrayImage::new(w, sh);
    for y in 0..sh {
        let row = &img.as_raw()[(y * sw) as usize..((y + 1) * sw) as usize];
        let out = &mut wide.as_mut()[(y * w) as usize..((y + 1) * w) as usize];
        for (o, taps) in out.iter_mut().zip(&across) {
            *o = mix(taps.iter().map(|&(i, wt)| (row[i as usize], wt)));
        }
    }
    let down = area_weights(sh, h);
    let mut out = GrayImage::new(w, h);
    for (y, taps) in down.iter().enumerate() {
        for x in 0..w {
            let v = mix(taps
                .iter()
                .map(|&(i, wt)| (wide.as_raw()[(i * w + x) as usize], wt)));
            out.as_mut()[y * w as usize + x as usize] = v;
        }
    }
    out
}

/// For each of `to` new pixels along an axis of `from` old ones: the old pixels it covers and
/// how much of each (in 1/65536ths of the new pixel).
fn area_weights(from: u32, to: u32) -> Vec<Vec<(u32, u32)>> {
    let step = from as f64 / to as f64;
    (0..to)
        .map(|i| {
            let (a, b) = (i as f64 * step, ((i + 1) as f64 * step).min(from as f64));
            let mut taps = Vec::new();
            let mut j = a.floor() as u32;
            while (j as f64) < b && j < from {
                let cover = (b.min(j as f64 + 1.0) - a.max(j as f64)) / (b - a);
                taps.push((j, (cover * 65536.0).round() as u32));
                j += 1;
            }
            taps
        })
        .collect()
}

fn mix(taps: impl Iterator<Item = (u8, u32)>) -> u8 {
    let (mut sum, mut total) = (0u64, 0u64);
    for (v, wt) in taps {
        sum += v as u64 * wt as u64;
        total += wt as u64;
    }
    (sum + total / 2).checked_div(total).unwrap_or(255).min(255) as u8
}

/// Black and white by Otsu's threshold (bounded below so a blank page stays blank).
pub fn binarise(img: &GrayImage) -> GrayImage {
    let mut hist = [0u64; 256];
    for p in img.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, c)| i as f64 * *c as f64)
        .sum();
    let (mut sum_b, mut w_b, mut best, mut threshold) = (0.0, 0u64, 0.0, INK);
    for (t, c) in hist.iter().enumerate() {
        w_b += c;
        if w_b == 0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0 {
            break;
        }
        sum_b += t as f64 * *c as f64;
        let m_b = sum_b / w_b as f64;
        let m_f = (sum - sum_b) / w_f as f64;
        let between = w_b as f64 * w_f as f64 * (m_b - m_f).powi(2);
        if between > best {
            best = between;
            threshold = t as u8;
        }
    }
    // After light correction paper is near 255: a threshold far below the middle means the page
    // has almost no ink, and one far above would turn paper grain into ink.
    let threshold = threshold.clamp(90, 200);
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] <= threshold { 0 } else { 255 };
    }
    out
}

/// Share of dark pixels.
pub fn ink_share(img: &GrayImage) -> f32 {
    let dark = img.pixels().filter(|p| p.0[0] < INK).count();
    dark as f32 / (img.width() as f32 * img.height() as f32).max(1.0)
}

/// Removes specks: dark connected components of at most `max_area` pixels (an i-dot at 10 pt and
/// 300 dpi is about 16 pixels, so `max_area` stays well below that).
pub fn despeckle(img: &mut GrayImage, max_area: usize) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut comp = Vec::new();
    for start in 0..w * h {
        if seen[start] || img.as_raw()[start] >= INK {
            continue;
        }
        comp.clear();
        stack.push(start);
        seen[start] = true;
        let mut big = false;
        while let Some(i) = stack.pop() {
            if !big {
                comp.push(i);
                big = comp.len() > max_area;
            }
            let (x, y) = (i % w, i / w);
            for (dx, dy) in [
                (-1i64, 0i64),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (1, 1),
                (-1, 1),
                (1, -1),
            ] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx < 0 || ny < 0 || nx as usize >= w || ny as usize >= h {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if !seen[j] && img.as_raw()[j] < INK {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        if !big {
            for &i in &comp {
                img.put_pixel((i % w) as u32, (i / w) as u32, Luma([255]));
            }
        }
    }
}

/// The skew of the text lines in degrees (positive: lines fall to the right), found as the angle
/// whose horizontal projection of dark pixels is the most peaked. Works on a reduced copy.
pub fn estimate_skew(bin: &GrayImage) -> f32 {
    let factor = (bin.width() / 800).max(1);
    let small = reduce_dark(bin, factor);
    let points: Vec<(f32, f32)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < INK)
        .map(|(x, y, _)| (x as f32, y as f32))
        .collect();
    if points.len() < 50 {
        return 0.0;
    }
    let h = small.height() as usize;
    let width = small.width() as f32;
    let score = |deg: f32| -> f64 {
        let t = deg.to_radians().tan();
        let pad = (width * t.abs()) as usize + 2;
        let mut rows = vec![0u32; h + 2 * pad];
        for &(x, y) in &points {
            let r = (y - x * t) as i64 + pad as i64;
            if r >= 0 && (r as usize) < rows.len() {
                rows[r as usize] += 1;
            }
        }
        rows.iter().map(|&c| (c as f64).powi(2)).sum()
    };
    let mut best = (0.0f32, score(0.0));
    let mut deg = -4.0;
    while deg <= 4.0 {
        let s = score(deg);
        if s > best.1 * 1.0001 {
            best = (deg, s);
        }
        deg += 0.25;
    }
    let centre = best.0;
    let mut deg = centre - 0.25;
    while deg <= centre + 0.25 {
        let s = score(deg);
        if s > best.1 {
            best = (deg, s);
        }
        deg += 0.05;
    }
    best.0
}

/// A copy `factor` times smaller where a block is dark when any of its pixels is.
fn reduce_dark(img: &GrayImage, factor: u32) -> GrayImage {
    if factor <= 1 {
        return img.clone();
    }
    let (w, h) = (img.width() / factor, img.height() / factor);
    let mut out = GrayImage::from_pixel(w.max(1), h.max(1), Luma([255]));
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[0] < INK {
            let (sx, sy) = (
                (x / factor).min(w.saturating_sub(1)),
                (y / factor).min(h.saturating_sub(1)),
            );
            out.put_pixel(sx, sy, Luma([0]));
        }
    }
    out
}

/// Turns the image by `deg` degrees about its centre (nearest neighbour; paper fills the corners).
/// A positive skew from [`estimate_skew`] is undone by rotating by the same positive angle.
pub fn rotate_small(img: &GrayImage, deg: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut out = GrayImage::from_pixel(w, h, Luma([255]));
    for y in 0..h {
        let dy = y as f32 - cy;
        for x in 0..w {
            let dx = x as f32 - cx;
            // Where the output pixel comes from in the source.
            let sx = c * dx - s * dy + cx;
            let sy = s * dx + c * dy + cy;
            if sx >= 0.0 && sy >= 0.0 && (sx as u32) < w && (sy as u32) < h {
                out.put_pixel(x, y, *img.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    out
}

/// Quarter turns clockwise.
pub fn rotate_quarters(img: &GrayImage, quarters: u32) -> GrayImage {
    match quarters % 4 {
        1 => imageops::rotate90(img),
        2 => imageops::rotate180(img),
        3 => imageops::rotate270(img),
        _ => img.clone(),
    }
}

/// Erases dark horizontal and vertical runs longer than `min_run` pixels: the ruled lines and
/// box borders of a form. Letters are far shorter than `min_run`, so text stays. A run may step
/// by one pixel sideways (a line left slightly slanted after straightening, or drawn by a
/// nearest-neighbour rotation as a staircase), so a pixel counts as part of a horizontal run
/// when it or its neighbour above or below is dark, and likewise for vertical runs.
pub fn erase_rules(bin: &GrayImage, min_run: u32) -> GrayImage {
    let (w, h) = bin.dimensions();
    let mut out = bin.clone();
    let raw = bin.as_raw();
    let dark = |x: u32, y: u32| raw[(y * w + x) as usize] < INK;
    let near_h =
        |x: u32, y: u32| dark(x, y) || (y > 0 && dark(x, y - 1)) || (y + 1 < h && dark(x, y + 1));
    let near_v =
        |x: u32, y: u32| dark(x, y) || (x > 0 && dark(x - 1, y)) || (x + 1 < w && dark(x + 1, y));
    for y in 0..h {
        let mut x = 0;
        while x < w {
            if !near_h(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && near_h(x, y) {
                x += 1;
            }
            if x - start >= min_run {
                for xx in start..x {
                    out.put_pixel(xx, y, Luma([255]));
                }
            }
        }
    }
    for x in 0..w {
        let mut y = 0;
        while y < h {
            if !near_v(x, y) {
                y += 1;
                continue;
            }
            let start = y;
            while y < h && near_v(x, y) {
                y += 1;
            }
            if y - start >= min_run {
                for yy in start..y {
                    out.put_pixel(x, yy, Luma([255]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_averages_the_area_each_pixel_covers() {
        // Black left half, white right half, 10 × 4 → 4 × 2: the middle columns mix.
        let img = GrayImage::from_fn(10, 4, |x, _| Luma([if x < 5 { 0 } else { 255 }]));
        let small = shrink(&img, 4, 2);
        assert_eq!(small.dimensions(), (4, 2));
        let row: Vec<u8> = (0..4).map(|x| small.get_pixel(x, 1).0[0]).collect();
        // Column 1 covers old 2.5..5 (black), column 2 covers 5..7.5 (white).
        assert_eq!(row, vec![0, 0, 255, 255]);
        let odd = shrink(&img, 3, 4);
        assert_eq!(
            odd.get_pixel(1, 0).0[0],
            128,
            "old 3.33..6.67 is half black"
        );
        assert_eq!(shrink(&img, 10, 4).as_raw(), img.as_raw());
    }

    fn lines_image(skew_deg: f32) -> GrayImage {
        let mut img = GrayImage::from_pixel(800, 600, Luma([255]));
        let t = skew_deg.to_radians().tan();
        for row in 0..10 {
            let y0 = 60.0 + row as f32 * 50.0;
            for x in (50..750).step_by(3) {
                for dy in 0..8 {
                    let y = y0 + x as f32 * t + dy as f32;
                    img.put_pixel(x, y as u32, Luma([0]));
                }
            }
        }
        img
    }

    #[test]
    fn skew_is_found_and_undone() {
        let img = lines_image(1.5);
        let skew = estimate_skew(&img);
        assert!((skew - 1.5).abs() < 0.15, "{skew}");
        let straight = rotate_small(&img, skew);
        assert!(estimate_skew(&straight).abs() < 0.15);
    }

    #[test]
    fn rules_go_and_specks_go_but_text_stays() {
        let mut img = GrayImage::from_pixel(300, 100, Luma([255]));
        for x in 10..290 {
            img.put_pixel(x, 50, Luma([0]));
        }
        for y in 20..30 {
            for x in 20..26 {
                img.put_pixel(x, y, Luma([0]));
            }
        }
        img.put_pixel(100, 10, Luma([0]));
        let mut out = erase_rules(&img, 60);
        despeckle(&mut out, 4);
        assert_eq!(out.get_pixel(150, 50).0[0], 255);
        assert_eq!(out.get_pixel(100, 10).0[0], 255);
        assert_eq!(out.get_pixel(22, 25).0[0], 0);
    }

    #[test]
    fn uneven_light_becomes_white_paper() {
        let mut img = GrayImage::new(400, 400);
        for (x, _, p) in img.enumerate_pixels_mut() {
            p.0[0] = (120 + x * 130 / 400) as u8;
        }
        img.put_pixel(10, 10, Luma([20]));
        let flat = binarise(&flatten_light(&img));
        assert!(ink_share(&flat) < 0.001);
    }
}
