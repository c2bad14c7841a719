//! Debugging aid: runs the OCR path on image files and prints the words and the forms read.
//! `cargo run --example ocr_probe -- FILE...` (`PAGE=n`: that page of a PDF; `SAVE=x.png`:
//! the first page image as decoded)
use tjid_intake::forms::layout::read_forms;
use tjid_intake::ocr::{raster, recognise_pages, OcrSettings};

fn main() {
    let settings = OcrSettings::default();
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("read");
        let pages = if data.starts_with(b"%PDF") {
            let page = std::env::var("PAGE")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(1);
            vec![raster::pdf_page(&data, page, &settings.raster).expect("page")]
        } else {
            raster::decode_image(&data, &settings.raster).expect("decode")
        };
        if let Ok(out) = std::env::var("SAVE") {
            pages[0].image.save(&out).expect("save");
        }
        let numbered = pages
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i + 1, p))
            .collect();
        let t = std::time::Instant::now();
        let out = recognise_pages(numbered, &settings).expect("ocr");
        eprintln!("{path}: {:?}", t.elapsed());
        for p in &out {
            for w in &p.words.words {
                print!(
                    "{}({:.0},{:.0},{:.0},{:.0}:{:.0}) ",
                    w.text, w.x0, w.y0, w.x1, w.y1, w.confidence
                );
            }
            println!();
        }
        let pages: Vec<_> = out.into_iter().map(|p| p.words).collect();
        for f in read_forms(&pages) {
            println!(
                "{:?} low={:?} signature={:?}",
                f.values, f.low_confidence, f.signature
            );
        }
    }
}
