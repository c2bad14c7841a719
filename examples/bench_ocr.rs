//! OCR benchmark over a scanned-form corpus: the project's own filled forms (TJID-101 and
//! TJID-102, Fillable and Table layouts) printed at 300 dpi in grey, straight and skewed.
//! Reports seconds per page (median, p95) with one worker, pages per second with the worker pool
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

    // One page at a time, one worker: seconds per page.
    ocr::set_workers(1);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for (i, page) in corpus.iter().enumerate() {
        let (t, c) = (Instant::now(), cpu_seconds());
        ocr::recognise_page(i + 1, page, &settings).expect("page recognised");
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
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
