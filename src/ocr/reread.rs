//! Second readings of a word whose page reading breaks its format (issue 19: read a field's
//! region again with a set-up of its own, keep the reading that is valid and agrees).
//!
//! Addresses: the Swedish model reads the `@` of most fonts as `&`, `Q`, `G`, `Ö` or `(e`
//! (`nils.holmGhalsanvast.se`), and plain `tesseract -l swe` does the same; the English model
//! reads it right on the same crop, but loses small dots more often. So a word that looks like
//! an address with its `@` lost is read again alone (`--psm 7`, English), and the two readings
//! are put together only where they agree: every letter and digit the same on both sides of
//! the `@`, the `@` from the second reading in place of at most two characters of the first,
//! the dots from the first. Anything else keeps the page's reading (and its broken format,
//! which the check stage reports). A merged address is marked uncertain (SPEC §2.1: a repaired
//! value keeps `low_ocr_confidence`).

use image::GrayImage;

use super::tesseract::{self, Request, TsvWord};
use super::OcrSettings;
use crate::domain::Email;

/// The model that reads `@`.
const ADDRESS_LANG: &str = "eng";
/// At most this many words of a page are read again.
const MAX_REREADS: usize = 6;
/// The confidence given to a merged reading: below the layout's low-confidence line.
const MERGED_CONFIDENCE: f32 = 50.0;

/// Reads again the page's words that look like an address without its `@`, and puts in the
/// merged reading where the two agree. An address OCR split into words (`karin. bergQvgregion.se`)
/// is read as the run of close words that ends in the domain, taken whole or not at all (a part
/// of it read again could be an address of its own). The page's candidates are read in one
/// Tesseract run: their crops stacked one above the other, a crop's height of white between
/// them, each a line of its own (a run per address cost as much again as the page's reading
/// on a form with two addresses).
pub fn addresses(straight: &GrayImage, words: &mut [TsvWord], settings: &OcrSettings, dpi: f32) {
    if !super::available(ADDRESS_LANG) {
        return;
    }
    // (first word, last word, the page's reading, the run's box, its crop)
    let mut found: Vec<(usize, usize, String, Area, GrayImage)> = Vec::new();
    let mut done_to = 0;
    for end in 0..words.len() {
        if found.len() == MAX_REREADS {
            break;
        }
        let start = run_start(words, end);
        if start < done_to {
            continue;
        }
        let run = &words[start..=end];
        let first: String = run.iter().map(|w| w.text.as_str()).collect();
        if !lost_its_at(&first) {
            continue;
        }
        done_to = end + 1;
        let area = bounds(run);
        if let Some(crop) = crop_text(straight, &area) {
            found.push((start, end, first, area, crop));
        }
    }
    if found.is_empty() {
        return;
    }
    let gap = found.iter().map(|f| f.4.height()).max().unwrap_or(0);
    let width = found.iter().map(|f| f.4.width()).max().unwrap_or(0) + 2 * gap;
    let height = found.iter().map(|f| f.4.height() + gap).sum::<u32>() + gap;
    let mut stack = GrayImage::from_pixel(width, height, image::Luma([255]));
    let mut rows = Vec::with_capacity(found.len());
    let mut y = gap;
    for f in &found {
        image::imageops::replace(&mut stack, &f.4, gap as i64, y as i64);
        rows.push((y, y + f.4.height()));
        y += f.4.height() + gap;
    }
    let req = Request {
        lang: ADDRESS_LANG,
        psm: 6,
        whitelist: None,
        timeout: settings.page_timeout,
        dpi: dpi as u32,
    };
    let read = match tesseract::recognise(&stack, &req) {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(error = %e, "second reading of the addresses failed");
            return;
        }
    };
    for ((start, end, first, area, _), (top, bottom)) in found.into_iter().zip(rows) {
        let mut line: Vec<&TsvWord> = read
            .iter()
            .filter(|r| (top..bottom).contains(&(r.top + r.height / 2)))
            .collect();
        line.sort_by_key(|r| r.left);
        let second = line
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(merged) = merge_address(&first, &second) {
            for w in &mut words[start..end] {
                w.text.clear();
            }
            let w = &mut words[end];
            (w.left, w.top, w.width, w.height) = (area.left, area.top, area.width, area.height);
            w.text = merged;
            w.confidence = w.confidence.min(MERGED_CONFIDENCE);
        }
    }
}

/// The first word of the run that ends at `end`: up to three words of one line, each close to
/// the next (less than half a letter's height apart, as OCR splits a word), none of them a
/// label (`E-post:`) nor a check box.
fn run_start(words: &[TsvWord], end: usize) -> usize {
    let part =
        |w: &TsvWord| !w.mark && !w.text.contains(':') && w.text.chars().any(char::is_alphanumeric);
    if !part(&words[end]) {
        return end;
    }
    let mut start = end;
    while start > 0 && end - start < 2 {
        let (prev, next) = (&words[start - 1], &words[start]);
        let gap = next.left as i64 - (prev.left + prev.width) as i64;
        if !part(prev) || prev.line != next.line || gap < 0 || gap as u32 > next.height / 2 {
            break;
        }
        start -= 1;
    }
    start
}

/// The box around words, as a word.
fn bounds(run: &[TsvWord]) -> Area {
    let left = run.iter().map(|w| w.left).min().unwrap_or(0);
    let top = run.iter().map(|w| w.top).min().unwrap_or(0);
    let right = run.iter().map(|w| w.left + w.width).max().unwrap_or(0);
    let bottom = run.iter().map(|w| w.top + w.height).max().unwrap_or(0);
    Area {
        left,
        top,
        width: right.saturating_sub(left),
        height: bottom.saturating_sub(top),
    }
}

struct Area {
    left: u32,
    top: u32,
    width: u32,
    height: u32,
}

/// A word shaped like an address whose `@` was read as something else: no `@`, no space, a
/// domain's ending (`.se`, `.com`), and letters before it. A web address is not one; a bare
/// domain may be (`perQtandlakare.se` cannot be told from `tandlakare.se`), and then costs a
/// second reading that finds no `@`.
fn lost_its_at(text: &str) -> bool {
    let lower = text.to_lowercase();
    if text.contains('@')
        || text.chars().count() < 8
        || lower.starts_with("www.")
        || lower.contains("://")
    {
        return false;
    }
    let Some((head, tld)) = text.trim_end_matches('.').rsplit_once('.') else {
        return false;
    };
    (2..=4).contains(&tld.chars().count())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && head.chars().filter(|c| c.is_alphanumeric()).count() >= 5
}

/// The area with a margin, cut from the page, and then cut down to its band of text: a dotted
/// leader line that OCR took into the word's box (a box twice a letter's height) is left out, as
/// the second reading would read it as letters.
fn crop_text(img: &GrayImage, a: &Area) -> Option<GrayImage> {
    let pad_x = (a.height / 2).max(4);
    let x0 = a.left.saturating_sub(pad_x);
    let x1 = (a.left + a.width + pad_x).min(img.width());
    let (y0, y1) = (a.top, (a.top + a.height).min(img.height()));
    if x1 <= x0 + 4 || y1 <= y0 + 4 {
        return None;
    }
    // Rows with ink in a tenth of the width or more; the letters' core (their x-height) is the
    // longest run of them.
    let inked = |y: u32| (x0..x1).filter(|&x| img.get_pixel(x, y).0[0] < 128).count() as u32;
    let min_ink = ((x1 - x0) / 10).max(1);
    let (mut best, mut run) = ((y0, y0), None::<u32>);
    for y in y0..=y1 {
        match (y < y1 && inked(y) >= min_ink, run) {
            (true, None) => run = Some(y),
            (false, Some(from)) => {
                if y - from > best.1 - best.0 {
                    best = (from, y);
                }
                run = None;
            }
            _ => {}
        }
    }
    let core = best.1 - best.0;
    if core < 4 {
        return None;
    }
    // Out from the letters' core to the ascenders and descenders, up to the white gap that
    // parts them from a line above or below.
    let (mut top, mut bottom) = best;
    while top > y0 && inked(top - 1) > 0 {
        top -= 1;
    }
    while bottom < y1 && inked(bottom) > 0 {
        bottom += 1;
    }
    let pad_y = (core / 4).max(2);
    let top = top.saturating_sub(pad_y);
    let bottom = (bottom + pad_y).min(img.height());
    Some(image::imageops::crop_imm(img, x0, top, x1 - x0, bottom - top).to_image())
}

/// Letters and digits only, lower case: what both readings must agree on.
fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The address made of the page's reading `first` and a second reading `second` that has the
/// `@`: `None` unless both agree on every letter and digit on either side of the `@` and the
/// result is a valid address.
fn merge_address(first: &str, second: &str) -> Option<String> {
    let (left, right) = second.split_once('@')?;
    if right.contains('@') {
        return None;
    }
    let (want_left, want_right) = (skeleton(left), skeleton(right));
    if want_left.is_empty() || want_right.is_empty() {
        return None;
    }
    // A box's side read as `|` before it, a speck after it: not part of the address.
    let first = first
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .trim_end_matches(|c: char| !c.is_alphanumeric());
    let chars: Vec<char> = first.chars().collect();
    let mut found = None;
    // Where the `@` was in the first reading: in place of 0–2 of its characters.
    for at in 1..chars.len() {
        for lost in 0..=2usize {
            if at + lost >= chars.len() {
                break;
            }
            let before: String = chars[..at].iter().collect();
            let after: String = chars[at + lost..].iter().collect();
            if skeleton(&before) == want_left && skeleton(&after) == want_right {
                // What lies at the join that is no letter or digit was the `@`'s damage.
                let candidate = format!(
                    "{}@{}",
                    before.trim_end_matches(|c: char| !c.is_alphanumeric()),
                    after.trim_start_matches(|c: char| !c.is_alphanumeric())
                );
                if found.as_ref().is_some_and(|f: &String| *f != candidate) {
                    return None;
                }
                found = Some(candidate);
            }
        }
    }
    let merged = found?;
    Email::parse(&merged).ok().map(|_| merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_whose_at_was_misread_is_a_candidate_and_others_are_not() {
        for t in [
            "nils.holmGhalsanvast.se",
            "sara.lind(ehalsanvast.se",
            "karin.bergövgregion.se",
            "lars.ekehalsanvast.se",
        ] {
            assert!(lost_its_at(t), "{t}");
        }
        for t in [
            "bo.ek@vgregion.se",
            "Närhälsan",
            "SE2321000131-E000000000102",
            "031-87",
            "www.vgregion.se",
            "https://vgregion.se",
            "2026-11-15",
        ] {
            assert!(!lost_its_at(t), "{t}");
        }
    }

    #[test]
    fn two_readings_are_merged_only_where_they_agree() {
        // The English reading has the @ and lost a dot; the page's has the dot.
        assert_eq!(
            merge_address("nils.holmGhalsanvast.se", "nils holm@halsanvast.se").as_deref(),
            Some("nils.holm@halsanvast.se")
        );
        assert_eq!(
            merge_address("sara.lind(ehalsanvast.se", "sara.lind@halsanvast.se").as_deref(),
            Some("sara.lind@halsanvast.se")
        );
        // `@` read as a letter of the address (`e`): the second reading says where it is.
        assert_eq!(
            merge_address("lars.ekehalsanvast.se", "lars.ek@halsanvast.se").as_deref(),
            Some("lars.ek@halsanvast.se")
        );
        // A box's side before it is no part of it.
        assert_eq!(
            merge_address("|nils.holmGhalsanvast.se.", ": nils holm@halsanvast.se").as_deref(),
            Some("nils.holm@halsanvast.se")
        );
        // A letter that differs: no merge, never a guess.
        assert_eq!(
            merge_address("nils.holmGhalsanvast.se", "nils.holm@halsanvest.se"),
            None
        );
        assert_eq!(
            merge_address("aek@halsanastse", "lars.ekOhalsanvast.se"),
            None
        );
        // No @ in the second reading, or two.
        assert_eq!(
            merge_address("nils.holmGhalsanvast.se", "nils holm&halsanvast.se"),
            None
        );
        assert_eq!(merge_address("a.bGc.se", "a@b@c.se"), None);
        // The result must be an address.
        assert_eq!(
            merge_address("nils.holmGhalsanvastse", "nils holm@halsanvastse"),
            None
        );
    }
}
