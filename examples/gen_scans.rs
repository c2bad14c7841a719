//! Generates the scanned-form fixtures under fixtures/scans: the project's own filled forms
//! printed (rendered by poppler's `pdftoppm`) and "scanned" in the ways mail brings them — 200
//! and 300 dpi, grey and bitonal, skewed ±1.5°, sideways, upside down, speckled, heavy JPEG
//! artefacts, a two-page G4 fax TIFF, a phone photo with uneven light, a scanned PDF inside a
//! forwarded message, a mixed PDF (page 1 text, page 2 scanned), a blank page, a scanned letter
//! and an image that is only noise — each wrapped in an email `NAME.eml`. With `--golden` it
//! also writes `NAME.json`, the `process --dry-run --json` output without `case_id`, using
//! `target/debug/tjid-intake` (build it first). Review a changed .json before committing it.
//!
//!     cargo run --release --example gen_scans [-- --golden]
//!
//! Needs poppler-utils, qpdf and fonts-urw-base35 (scripts/setup-test-deps.sh installs them). The
//! forms use the standard font Helvetica, which poppler draws with whatever font fontconfig
//! offers for it: only with Nimbus Sans (metric-compatible) do the scans look like print and come
//! out byte for byte as committed — DejaVu Sans, the fallback on a bare Debian, gives squeezed
//! glyphs with gaps and other OCR results. So the generator refuses to run without it.
//! Everything else is deterministic (a fixed pseudo-random seed, qpdf's deterministic IDs).

use std::path::Path;
use std::process::Command;

#[path = "common/scan.rs"]
mod scan;

use image::{GrayImage, Luma};
use scan::{jpeg, print, scanned_pdf};
use tjid_intake::forms::spec::FormKind;
use tjid_intake::ocr::prep::{rotate_quarters, rotate_small};
use tjid_testkit::mime::{build, MailSpec, NameEncoding, Part};
use tjid_testkit::pdf_writer::{example_values, render, render_text_page, FilledForm, Layout};

const DIR: &str = "fixtures/scans";
const MANAGER: &str = "Örjan Lindqvist <orjan.lindqvist@vgregion.se>";
const DATE: &str = "Wed, 18 Nov 2026 10:00:00 +0100";

/// A small deterministic generator (xorshift) so the fixtures do not change between runs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

fn form_pdf(kind: FormKind, layout: Layout) -> Vec<u8> {
    let values = example_values(kind);
    render(&[FilledForm {
        kind,
        layout,
        values: &values,
    }])
    .expect("form renders")
}

fn png(img: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn levels(img: &GrayImage, n: u32) -> GrayImage {
    let mut out = img.clone();
    let step = 256 / n;
    for p in out.pixels_mut() {
        p.0[0] = ((p.0[0] as u32 / step) * step + step / 2).min(255) as u8;
    }
    out
}

fn bitonal(img: &GrayImage) -> GrayImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] < 170 { 0 } else { 255 };
    }
    out
}

fn speckle(img: &mut GrayImage, rng: &mut Rng, count: u32) {
    let (w, h) = img.dimensions();
    for _ in 0..count {
        let (x, y) = (rng.below(w - 2), rng.below(h - 2));
        let size = 1 + rng.below(2);
        for dy in 0..size {
            for dx in 0..size {
                img.put_pixel(x + dx, y + dy, Luma([0]));
            }
        }
    }
}

/// A phone photo: the sheet on a darker desk, light falling off from one corner, slightly soft.
fn phone_photo(img: &GrayImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let margin = w / 20;
    let mut out = GrayImage::from_pixel(w + 2 * margin, h + 2 * margin, Luma([70]));
    image::imageops::overlay(&mut out, img, margin as i64, margin as i64);
    let (ow, oh) = out.dimensions();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let light = 0.55 + 0.45 * (1.0 - (x as f32 / ow as f32 * 0.6 + y as f32 / oh as f32 * 0.4));
        p.0[0] = (p.0[0] as f32 * light) as u8;
    }
    image::imageops::blur(&out, 0.8)
}

/// A TIFF of bitonal pages, each one CCITT G4 strip, WhiteIsZero, as fax gateways write them.
fn g4_tiff(pages: &[GrayImage], dpi: u32) -> Vec<u8> {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    let mut prev_next_ptr = 4usize;
    for img in pages {
        let (w, h) = img.dimensions();
        let mut enc = fax::encoder::Encoder::new(fax::VecWriter::new());
        for y in 0..h {
            let row = (0..w).map(|x| {
                if img.get_pixel(x, y).0[0] < 128 {
                    fax::Color::Black
                } else {
                    fax::Color::White
                }
            });
            enc.encode_line(row, w as u16).unwrap();
        }
        let data = enc.finish().unwrap().finish();
        let strip = out.len();
        out.extend_from_slice(&data);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let res = out.len();
        out.extend_from_slice(&dpi.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        let ifd = out.len();
        out[prev_next_ptr..prev_next_ptr + 4].copy_from_slice(&(ifd as u32).to_le_bytes());
        let tags: &[(u16, u16, u32)] = &[
            (256, 4, w),
            (257, 4, h),
            (258, 3, 1),
            (259, 3, 4),
            (262, 3, 0),
            (273, 4, strip as u32),
            (277, 3, 1),
            (278, 4, h),
            (279, 4, data.len() as u32),
            (282, 5, res as u32),
            (283, 5, res as u32),
            (296, 3, 2),
        ];
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        for (tag, typ, value) in tags {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&typ.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            if *typ == 3 {
                out.extend_from_slice(&(*value as u16).to_le_bytes());
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        prev_next_ptr = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out
}

/// Page 1 of `text_pdf` as it is, then `scan` as page 2 (qpdf joins them).
fn mixed_pdf(text_pdf: &[u8], scan: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("gen_scans_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, out) = (dir.join("a.pdf"), dir.join("b.pdf"), dir.join("out.pdf"));
    std::fs::write(&a, text_pdf).unwrap();
    std::fs::write(&b, scan).unwrap();
    let ok = Command::new("qpdf")
        .arg("--deterministic-id")
        .arg("--empty")
        .arg("--pages")
        .arg(&a)
        .arg("1")
        .arg(&b)
        .arg("1")
        .arg("--")
        .arg(&out)
        .status()
        .expect("qpdf runs")
        .success();
    assert!(ok, "qpdf joined the pages");
    let data = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    data
}

fn file(name: &str, content_type: &str, data: Vec<u8>) -> Part {
    Part::File {
        name: name.into(),
        content_type: content_type.into(),
        data,
        encoding: NameEncoding::Plain,
    }
}

fn write_mail(name: &str, subject: &str, parts: Vec<Part>) {
    let mut spec = MailSpec::new(MANAGER, subject, &format!("<{name}@scans.tjid>"), DATE);
    spec.parts = parts;
    let raw = build(&spec);
    assert!(
        raw.len() < 300_000,
        "{name}: {} bytes is too large for a fixture",
        raw.len()
    );
    std::fs::write(Path::new(DIR).join(format!("{name}.eml")), raw).unwrap();
}

/// Stops unless fontconfig draws Helvetica with Nimbus Sans (see the top of this file).
fn require_print_font() {
    let out = Command::new("fc-match")
        .args(["-f", "%{family}", "Helvetica"])
        .output()
        .expect("fc-match (fontconfig) runs");
    let family = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        family.contains("Nimbus Sans"),
        "Helvetica is drawn with {family:?}, not Nimbus Sans: install fonts-urw-base35"
    );
}

fn main() {
    require_print_font();
    let golden = std::env::args().any(|a| a == "--golden");
    std::fs::create_dir_all(DIR).unwrap();
    let mut rng = Rng(0x5eed_2026_1118);
    let order = form_pdf(FormKind::Order, Layout::Fillable);
    let order_table = form_pdf(FormKind::Order, Layout::Table);
    let dereg = form_pdf(FormKind::Deregistration, Layout::Fillable);
    let dereg_table = form_pdf(FormKind::Deregistration, Layout::Table);
    let order300 = print(&order, 1, 300);
    let order200 = print(&order, 1, 200);

    let jpg = |d| file("skanning.jpg", "image/jpeg", d);
    // 300 dpi grey as PNG with 16 grey levels: a JPEG of a whole A4 page at 300 dpi does not fit
    // the fixture size limit at a quality worth testing.
    write_mail(
        "scan_order_300dpi_gray",
        "Beställning (skannad)",
        vec![file(
            "skanning.png",
            "image/png",
            png(&levels(&order300, 16)),
        )],
    );
    // SPEC §2.2: the same order with its signature box left empty.
    let mut unsigned = example_values(FormKind::Order);
    unsigned.remove(tjid_intake::forms::spec::SIGNATURE_KEY);
    let unsigned_pdf = render(&[FilledForm {
        kind: FormKind::Order,
        layout: Layout::Table,
        values: &unsigned,
    }])
    .expect("form renders");
    write_mail(
        "scan_order_unsigned",
        "Beställning (skannad)",
        vec![jpg(jpeg(&print(&unsigned_pdf, 1, 200), 70))],
    );
    write_mail(
        "scan_order_200dpi_gray",
        "Beställning (skannad)",
        vec![jpg(jpeg(&order200, 70))],
    );
    write_mail(
        "scan_order_300dpi_bitonal_g4",
        "Beställning (skannad)",
        vec![file(
            "skanning.tif",
            "image/tiff",
            g4_tiff(&[bitonal(&order300)], 300),
        )],
    );
    write_mail(
        "scan_order_table_200dpi_bitonal_png",
        "Beställning (skannad)",
        vec![file(
            "skanning.png",
            "image/png",
            png(&bitonal(&print(&order_table, 1, 200))),
        )],
    );
    write_mail(
        "scan_order_skew_plus_1_5",
        "Beställning",
        vec![jpg(jpeg(&rotate_small(&order200, -1.5), 70))],
    );
    write_mail(
        "scan_dereg_table_skew_minus_1_5",
        "Avregistrering",
        vec![jpg(jpeg(
            &rotate_small(&print(&dereg_table, 1, 200), 1.5),
            70,
        ))],
    );
    write_mail(
        "scan_order_sideways",
        "Beställning",
        vec![jpg(jpeg(&rotate_quarters(&order200, 1), 70))],
    );
    write_mail(
        "scan_dereg_upside_down",
        "Avregistrering",
        vec![jpg(jpeg(&rotate_quarters(&print(&dereg, 1, 200), 2), 70))],
    );
    let mut speckled = bitonal(&order200);
    speckle(&mut speckled, &mut rng, 4000);
    write_mail(
        "scan_order_speckle",
        "Beställning",
        vec![file("skanning.png", "image/png", png(&speckled))],
    );
    write_mail(
        "scan_order_jpeg_artefacts",
        "Beställning",
        vec![jpg(jpeg(&order200, 22))],
    );
    write_mail(
        "scan_fax_two_pages_g4",
        "Fax: beställning och avregistrering",
        vec![file(
            "fax.tif",
            "image/tiff",
            g4_tiff(&[bitonal(&order200), bitonal(&print(&dereg, 1, 200))], 200),
        )],
    );
    write_mail(
        "scan_phone_photo",
        "Foto av blanketten",
        vec![jpg(jpeg(&phone_photo(&order200), 70))],
    );

    // A scanned PDF of the deregistration, forwarded by a colleague.
    let scan = scanned_pdf(&print(&dereg_table, 1, 200), 70);
    let mut inner = MailSpec::new(MANAGER, "Avregistrering", "<inner-scan@scans.tjid>", DATE);
    inner.parts = vec![file("avregistrering.pdf", "application/pdf", scan)];
    write_mail(
        "scan_forwarded_pdf",
        "Fwd: Avregistrering",
        vec![Part::Forwarded(Box::new(inner))],
    );

    // Page 1 with its text layer, page 2 scanned.
    let two_pages = form_pdf(FormKind::Order, Layout::SameLineTwoPages);
    let page2 = scanned_pdf(&print(&two_pages, 2, 200), 70);
    write_mail(
        "scan_mixed_pdf_text_then_scan",
        "Beställning",
        vec![file(
            "bestallning.pdf",
            "application/pdf",
            mixed_pdf(&two_pages, &page2),
        )],
    );

    // A blank sheet: paper grain only.
    let mut blank = GrayImage::from_pixel(1654, 2339, Luma([244]));
    for p in blank.pixels_mut() {
        p.0[0] = 238 + rng.below(12) as u8;
    }
    let blank = image::imageops::blur(&blank, 2.0);
    write_mail("scan_blank_page", "Skanning", vec![jpg(jpeg(&blank, 60))]);

    // A scanned letter: text, but no form.
    let letter = render_text_page(&[
        "Hej!",
        "",
        "Vi har flyttat vår mottagning till nya lokaler från och med den 1 december.",
        "Alla beställningar skickas som vanligt till TjänsteID-service.",
        "",
        "Med vänlig hälsning",
        "Vårdcentralen Ekmansgatan",
    ]);
    write_mail(
        "scan_not_a_form",
        "Information",
        vec![jpg(jpeg(&print(&letter, 1, 200), 70))],
    );

    // Noise: an image with nothing to read at all.
    let mut noise = GrayImage::new(600, 800);
    for p in noise.pixels_mut() {
        p.0[0] = rng.below(256) as u8;
    }
    write_mail("scan_noise_unreadable", "Bild", vec![jpg(jpeg(&noise, 30))]);

    if golden {
        write_golden();
    }
}

/// `NAME.json` for every `NAME.eml`: the CLI's output without `case_id`.
fn write_golden() {
    let mut names: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    for eml in names {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        let out = Command::new(format!("{target}/debug/tjid-intake"))
            .env("OMP_THREAD_LIMIT", "1")
            .args([
                "--config",
                "tests/golden.toml",
                "process",
                "--dry-run",
                "--json",
            ])
            .arg(&eml)
            .output()
            .expect("target/debug/tjid-intake runs (cargo build first)");
        let mut v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON object");
        for case in v["cases"].as_array_mut().unwrap() {
            case.as_object_mut().unwrap().remove("case_id");
        }
        std::fs::write(
            eml.with_extension("json"),
            serde_json::to_string_pretty(&v).unwrap() + "\n",
        )
        .unwrap();
        println!("{}", eml.display());
    }
}
