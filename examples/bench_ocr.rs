//! OCR benchmark over a scanned-form corpus: the project's own filled forms (TJID-101 and
//! TJID-102, Fillable and Table layouts) printed at 300 dpi in grey, straight and skewed.
//! Reports seconds per page (median, p95) with one worker, the processor time of a plain
//! `tesseract stdin stdout -l swe` on each same page beside it, pages per second with the worker pool
//! (default one per core), and the two ways of getting a PDF page's image.
//!
//!     cargo run --release --example bench_ocr [-- PAGES]
//!
//! Needs tesseract + tesseract-ocr-swe and poppler-utils.

use std::time::Instant;

#[path = "common/scan.rs"]
mod scan;

use scan::{print, scanned_pdf};
use tjid_intake::forms::spec::FormKind;
use tjid_intake::ocr::{self, raster, OcrSettings, PageImage};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// CPU seconds used so far by this process and its waited-for children (tesseract), from
/// /proc/self/stat: a figure that does not depend on what else the machine is doing.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    // Fields 14–17 of the file (utime, stime, cutime, cstime) are 12–15 after the name.
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn main() {
    let pages: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(12);
    let settings = OcrSettings::default();
    if !ocr::available(&settings.lang) {
        eprintln!("tesseract with the Swedish model is not installed");
        std::process::exit(1);
    }
    let mut corpus = Vec::new();
    for (kind, layout) in [
        (FormKind::Order, Layout::Fillable),
        (FormKind::Deregistration, Layout::Fillable),
        (FormKind::Order, Layout::Table),
        (FormKind::Deregistration, Layout::Table),
    ] {
        let values = example_values(kind);
        let pdf = render(&[FilledForm {
            kind,
            layout,
            values: &values,
        }])
        .unwrap();
        let img = print(&pdf, 1, 300);
        corpus.push(img.clone());
        corpus.push(ocr::prep::rotate_small(&img, 1.5));
        corpus.push(ocr::prep::rotate_small(&img, -1.0));
    }
    let corpus: Vec<PageImage> = corpus
        .into_iter()
        .cycle()
        .take(pages)
        .map(|image| PageImage {
            image,
            dpi: Some(300.0),
        })
        .collect();

    // One page at a time, one worker: seconds per page; side by side with each page, a plain
    // `tesseract stdin stdout -l swe` on the same grey 300-dpi page (issue 19's yardstick).
    ocr::set_workers(1);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut plain = Vec::new();
    for (i, page) in corpus.iter().enumerate() {
        let (t, c) = (Instant::now(), cpu_seconds());
        ocr::recognise_page(i + 1, page, &settings).expect("page recognised");
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        let c = cpu_seconds();
        plain_tesseract(&page.image);
        plain.push(cpu_seconds() - c);
    }
    let ratios: Vec<f64> = {
        let mut r: Vec<f64> = cpu.iter().zip(&plain).map(|(a, b)| a / b).collect();
        r.sort_by(f64::total_cmp);
        r
    };
    plain.sort_by(f64::total_cmp);
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "single worker: {} pages at 300 dpi, median {:.2} s/page, p95 {:.2} s/page (CPU: median {:.2} s, p95 {:.2} s)",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        percentile(&cpu, 0.5),
        percentile(&cpu, 0.95)
    );

    println!(
        "plain tesseract -l swe on the same pages: CPU median {:.2} s, p95 {:.2} s; this reader / plain, per page: median {:.2}, p95 {:.2}",
        percentile(&plain, 0.5),
        percentile(&plain, 0.95),
        percentile(&ratios, 0.5),
        percentile(&ratios, 0.95)
    );

    // The pool: one worker per core.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    ocr::set_workers(workers);
    let numbered: Vec<_> = corpus
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, p)| (i + 1, p))
        .collect();
    let t = Instant::now();
    ocr::recognise_pages(numbered, &settings).expect("pages recognised");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pool of {workers} workers: {} pages in {secs:.1} s = {:.2} pages/s",
        corpus.len(),
        corpus.len() as f64 / secs
    );

    // Getting a scanned PDF page's image: the embedded JPEG against pdftoppm at 300 dpi.
    let scan = &corpus[0].image;
    let pdf = scanned_pdf(scan, 70);
    let t = Instant::now();
    for _ in 0..5 {
        raster::embedded_page_image(&pdf, 1, &settings.raster).expect("embedded image");
    }
    let embedded = t.elapsed().as_secs_f64() / 5.0;
    let t = Instant::now();
    for _ in 0..5 {
        raster::render_page(&pdf, 1, &settings.raster).expect("rendered");
    }
    let rendered = t.elapsed().as_secs_f64() / 5.0;
    println!("page image of a scanned PDF (300 dpi JPEG): embedded {embedded:.3} s, pdftoppm -r 300 {rendered:.3} s");
}

/// Runs `tesseract stdin stdout -l swe` (its defaults: page segmentation 3, its own
/// thresholding) on `img` as a PGM, one thread, and waits for it: its processor time shows in
/// [`cpu_seconds`] as a waited-for child's.
fn plain_tesseract(img: &image::GrayImage) {
    use std::io::Write;
    let mut pgm = format!("P5\n{} {}\n255\n", img.width(), img.height()).into_bytes();
    pgm.extend_from_slice(img.as_raw());
    let mut child = std::process::Command::new("tesseract")
        .args(["stdin", "stdout", "-l", "swe"])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tesseract runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&pgm)
        .expect("page written");
    child.wait().expect("tesseract ends");
}
