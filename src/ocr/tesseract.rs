//! Running Tesseract.
//!
//! Through the CLI (`tesseract stdin stdout … tsv`), not a library binding: STACK-NOTES measured
//! the `tesseract`/`leptess` crates at the same speed as the CLI, while the CLI gives crash and
//! memory isolation (a page that makes Tesseract abort or loop costs one killed process, never the
//! daemon), a hard time limit by killing the child, and a build with no C toolchain pieces
//! (libclang, -dev packages). The cost, one process start and model load per call, is about
//! 0.1 s against 1–2 s of recognition. The image goes in on standard input as PGM (no encoding
//! cost), the word boxes come back on standard output as TSV.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::child::ChildError;

use image::GrayImage;

#[derive(Debug, thiserror::Error)]
pub enum TesseractError {
    #[error("tesseract could not be started: {0}")]
    Start(std::io::Error),
    #[error("tesseract took more than {0:?} of processor time and was stopped")]
    Timeout(Duration),
    #[error("tesseract waited for a processor far longer than it worked and was stopped")]
    Starved,
    #[error("tesseract failed: {0}")]
    Failed(String),
}

/// One word of Tesseract's TSV, in pixels of the image it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct TsvWord {
    pub text: String,
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    pub confidence: f32,
    /// (block, paragraph, line) as numbered by Tesseract.
    pub line: (u32, u32, u32),
    /// A check-box token put in by marks.rs, not read by Tesseract.
    pub mark: bool,
}

/// What to ask of Tesseract.
pub struct Request<'a> {
    pub lang: &'a str,
    /// Page segmentation mode.
    pub psm: u8,
    /// `tessedit_char_whitelist`, for fields that hold only digits.
    pub whitelist: Option<&'a str>,
    pub timeout: Duration,
    pub dpi: u32,
}

/// Whether the tesseract binary runs and has `lang`'s model.
pub fn available(lang: &str) -> bool {
    let Ok(out) = Command::new("tesseract")
        .arg("--list-langs")
        .stdin(Stdio::null())
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().any(|l| l.trim() == lang)
}

/// Recognises `img` and returns its words with boxes and confidences.
pub fn recognise(img: &GrayImage, req: &Request<'_>) -> Result<Vec<TsvWord>, TesseractError> {
    let mut args: Vec<String> = vec![
        "stdin".into(),
        "stdout".into(),
        "-l".into(),
        req.lang.into(),
        "--psm".into(),
        req.psm.to_string(),
        "--dpi".into(),
        req.dpi.to_string(),
    ];
    if let Some(w) = req.whitelist {
        args.push("-c".into());
        args.push(format!("tessedit_char_whitelist={w}"));
    }
    args.push("tsv".into());
    let out = run(&args, img, req.timeout)?;
    Ok(parse_tsv(&out))
}

/// Orientation and script detection (`--psm 0`): how many degrees clockwise the page must be
/// turned to be upright, and the detector's confidence.
pub fn orientation(
    img: &GrayImage,
    timeout: Duration,
    dpi: u32,
) -> Result<(u32, f32), TesseractError> {
    let args: Vec<String> = ["stdin", "stdout", "--psm", "0", "--dpi", &dpi.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = run(&args, img, timeout)?;
    let mut rotate = 0;
    let mut conf = 0.0;
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("Rotate:") {
            rotate = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Orientation confidence:") {
            conf = v.trim().parse().unwrap_or(0.0);
        }
    }
    Ok((rotate, conf))
}

/// The image as Netpbm for tesseract's stdin: a binarised page (only black and white) as
/// 1-bit PBM, anything else as 8-bit PGM. Tesseract reads the same pixels either way and gives
/// the same words, but with a 1-bit image it skips its own thresholding: about a fifth less
/// time per page (measured on the OCR benchmark's pages: 1.25 s → 1.00 s, TSV identical).
fn netpbm(img: &GrayImage) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if !img.as_raw().iter().all(|&p| p == 0 || p == 255) {
        let mut out = format!("P5\n{w} {h}\n255\n").into_bytes();
        out.extend_from_slice(img.as_raw());
        return out;
    }
    let mut out = format!("P4\n{w} {h}\n").into_bytes();
    let row_bytes = w.div_ceil(8);
    out.reserve(row_bytes * h);
    for row in img.as_raw().chunks(w.max(1)).take(h) {
        let mut packed = vec![0u8; row_bytes];
        for (x, &p) in row.iter().enumerate() {
            // PBM: 1 is black.
            if p == 0 {
                packed[x / 8] |= 0x80 >> (x % 8);
            }
        }
        out.extend_from_slice(&packed);
    }
    out
}

/// Runs tesseract with the image on stdin; kills it when `timeout` passes.
fn run(args: &[String], img: &GrayImage, timeout: Duration) -> Result<String, TesseractError> {
    let mut cmd = Command::new("tesseract");
    cmd.args(args)
        // Without this, OpenMP threads fight over the cores: 2–3 times slower (STACK-NOTES).
        .env("OMP_THREAD_LIMIT", "1");
    let done = match super::child::run(cmd, netpbm(img), 64 << 20, timeout) {
        Ok(done) => done,
        Err(ChildError::Start(e)) => return Err(TesseractError::Start(e)),
        Err(ChildError::Timeout) => return Err(TesseractError::Timeout(timeout)),
        Err(ChildError::Starved) => return Err(TesseractError::Starved),
        Err(ChildError::Wait(e)) => return Err(TesseractError::Failed(e.to_string())),
    };
    if !done.status.success() {
        let msg = String::from_utf8_lossy(&done.stderr);
        let first = msg
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .to_string();
        return Err(TesseractError::Failed(format!("{}: {first}", done.status)));
    }
    Ok(String::from_utf8_lossy(&done.stdout).into_owned())
}

/// Level-5 (word) rows of Tesseract's TSV.
pub fn parse_tsv(tsv: &str) -> Vec<TsvWord> {
    let mut words = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        if text.is_empty() {
            continue;
        }
        let n = |i: usize| cols[i].trim().parse::<u32>().unwrap_or(0);
        words.push(TsvWord {
            text: text.to_string(),
            left: n(6),
            top: n(7),
            width: n(8),
            height: n(9),
            confidence: cols[10].trim().parse::<f32>().unwrap_or(0.0).max(0.0),
            line: (n(2), n(3), n(4)),
            mark: false,
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_are_read() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t2480\t3508\t-1\t\n\
                   5\t1\t2\t1\t1\t1\t208\t504\t168\t38\t92.5\tVårdgivare\n\
                   5\t1\t2\t1\t1\t2\t400\t504\t10\t38\t-1\t \n";
        let words = parse_tsv(tsv);
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].text, "Vårdgivare");
        assert_eq!(
            (words[0].left, words[0].top, words[0].width, words[0].height),
            (208, 504, 168, 38)
        );
        assert_eq!(words[0].confidence, 92.5);
    }

    #[test]
    fn a_black_and_white_page_goes_as_one_bit_anything_else_as_grey() {
        // 10 × 2: the row is padded to whole bytes, black is 1.
        let mut bw = GrayImage::from_pixel(10, 2, image::Luma([255]));
        bw.put_pixel(0, 0, image::Luma([0]));
        bw.put_pixel(9, 1, image::Luma([0]));
        assert_eq!(
            netpbm(&bw),
            [b"P4\n10 2\n".as_slice(), &[0x80, 0x00, 0x00, 0x40]].concat()
        );
        let mut grey = bw.clone();
        grey.put_pixel(5, 0, image::Luma([128]));
        let out = netpbm(&grey);
        assert!(out.starts_with(b"P5\n10 2\n255\n"));
        assert_eq!(out.len(), b"P5\n10 2\n255\n".len() + 20);
    }
}
