//! OCR of scanned forms (issue 3): every `fixtures/scans/NAME.eml` must give, through
//! `process --dry-run --json`, the JSON in `NAME.json` (without `case_id`); on a mismatch the
//! actual output is written to `NAME.json.failed`. Regenerate the scans and their golden output
//! with `cargo build && cargo run --example gen_scans -- --golden`, and review the diff.
//!
//! Also: a mixed PDF (page 1 text, page 2 scanned) runs OCR on page 2 only; a blank scan holds no
//! form; a scanned letter holds no form; an image of noise is unreadable.
//!
//! These tests need `tesseract` with the Swedish model (Debian: tesseract-ocr, tesseract-ocr-swe)
//! and poppler-utils. Without them they fail when `CI` is set and are skipped, loudly, otherwise.

use std::path::Path;

#[allow(dead_code)]
#[path = "support/golden.rs"]
mod golden;

use golden::ocr_ready;
use tjid_intake::ocr;
use tjid_intake::pipeline::extract::{read_attachment, AttachmentRead, ExtractLimits};
use tjid_intake::pipeline::parse::parse_mail;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn golden_scans() {
    if !ocr_ready() {
        return;
    }
    assert!(
        golden::count_emails(&root().join("fixtures/scans")) >= 15,
        "the scan fixtures are there"
    );
    golden::run_golden_set("fixtures/scans", "tests/golden.toml");
}

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_attachment_bytes: 20 << 20,
        max_attachments: 20,
        pdf: Default::default(),
        ocr: ocr::OcrSettings::default(),
    }
}

fn read_fixture(name: &str) -> Vec<AttachmentRead> {
    let raw = std::fs::read(root().join("fixtures/scans").join(name)).unwrap();
    let mail = parse_mail(&raw).unwrap();
    mail.attachments
        .iter()
        .map(|a| read_attachment(a, &limits()))
        .collect()
}

#[test]
fn mixed_pdf_reads_page_1_as_text_and_runs_ocr_on_page_2_only() {
    if !ocr_ready() {
        return;
    }
    let reads = read_fixture("scan_mixed_pdf_text_then_scan.eml");
    let [AttachmentRead::Forms(forms)] = reads.as_slice() else {
        panic!("one form expected: {reads:?}")
    };
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(form.pages, vec![1, 2]);
    assert_eq!(form.ocr_pages, vec![2], "OCR ran on page 2 only");
    // Page 1 (text layer) and page 2 (scan) both gave their fields.
    assert_eq!(form.values["personnummer"], "19121212-1212");
    assert_eq!(form.values["vc_namn"], "Örjan Lindqvist");
    assert_eq!(form.values["datum"], "2026-11-18");
}

#[test]
fn a_blank_scan_is_readable_and_holds_no_form() {
    if !ocr_ready() {
        return;
    }
    assert_eq!(
        read_fixture("scan_blank_page.eml"),
        vec![AttachmentRead::ScanNoForm]
    );
}

#[test]
fn a_scanned_letter_holds_no_form_and_noise_is_unreadable() {
    if !ocr_ready() {
        return;
    }
    assert_eq!(
        read_fixture("scan_not_a_form.eml"),
        vec![AttachmentRead::ScanNoForm]
    );
    let noise = read_fixture("scan_noise_unreadable.eml");
    assert!(
        matches!(noise.as_slice(), [AttachmentRead::Unreadable(_)]),
        "{noise:?}"
    );
}

#[test]
fn a_broken_image_is_unreadable_without_running_ocr() {
    let att = tjid_intake::pipeline::parse::Attachment {
        name: Some("skanning.jpg".into()),
        content_type: "image/jpeg".into(),
        data: b"\xFF\xD8\xFF\xE0 this is not a JPEG".to_vec(),
        depth: 0,
    };
    assert!(matches!(
        read_attachment(&att, &limits()),
        AttachmentRead::Unreadable(_)
    ));
}

#[test]
fn without_tesseract_a_scan_is_quarantined_not_answered_as_unreadable() {
    // A model that is not installed stands for a machine without Tesseract.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tjid-intake"))
        .current_dir(root())
        .env("TJID__OCR__LANG", "qqq")
        .args([
            "--config",
            "tests/golden.toml",
            "process",
            "--dry-run",
            "--json",
        ])
        .args([
            "fixtures/scans/scan_order_200dpi_gray.eml",
            "fixtures/mail/order_table_ok.eml",
        ])
        .output()
        .expect("run tjid-intake");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["decision"], "quarantined", "{}", lines[0]);
    assert_eq!(lines[0]["cases"].as_array().unwrap().len(), 0, "no reply");
    assert!(lines[0]["error"].as_str().unwrap().contains("tesseract"));
    // Digital forms are still read.
    assert_eq!(lines[1]["cases"][0]["decision"], "queued", "{}", lines[1]);
}
