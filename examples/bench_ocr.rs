//! OCR benchmark over a scanned-form corpus: the project's own filled forms (TJID-101 and
//! TJID-102, Fillable and Table layouts) printed at 300 dpi in grey, straight and skewed.
//! Reports seconds per page (median, p95) with one worker, pages per second with the worker pool
//! (default one per core), and the two ways of getting a PDF page's image.
//!
//!     cargo run --release --example bench_ocr [-- PAGES]
//!
//! Needs tesseract + tesseract-ocr-swe and poppler-utils.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use image::GrayImage;
use tjid_intake::forms::pdf_writer::{example_values, render, FilledForm, Layout};
use tjid_intake::forms::spec::FormKind;
use tjid_intake::ocr::{self, raster, OcrSettings, PageImage};

fn print(pdf: &[u8], dpi: u32) -> GrayImage {
    let mut child = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-gray", "-singlefile", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pdftoppm runs");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout[..32]).to_string();
    let mut it = text.split_ascii_whitespace().skip(1);
    let w: u32 = it.next().unwrap().parse().unwrap();
    let h: u32 = it.next().unwrap().parse().unwrap();
    let header = out.stdout.len() - (w * h) as usize;
    GrayImage::from_raw(w, h, out.stdout[header..].to_vec()).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
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
        let img = print(&pdf, 300);
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
    for (i, page) in corpus.iter().enumerate() {
        let t = Instant::now();
        ocr::recognise_page(i + 1, page, &settings).expect("page recognised");
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "single worker: {} pages at 300 dpi, median {:.2} s/page, p95 {:.2} s/page",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.95)
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
    let pdf = scanned_pdf(scan);
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

fn scanned_pdf(img: &GrayImage) -> Vec<u8> {
    use lopdf::{dictionary, Document, Object, Stream};
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(img)
        .unwrap();
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let (w, h) = img.dimensions();
    let image_id = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => w as i64, "Height" => h as i64,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
        },
        jpeg,
    ));
    let content = doc.add_object(Stream::new(
        dictionary! {},
        b"q 595 0 0 842 0 0 cm /Im0 Do Q".to_vec(),
    ));
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Contents" => content, "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image_id } },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
