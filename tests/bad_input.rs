//! A directory of broken inputs: every one gets its outcome, and the run goes on.

#[allow(dead_code)]
#[path = "support/golden.rs"]
mod golden;
mod support;

use std::io::Write;

use support::Installation;
use tjid_intake::forms::spec::FormKind;
use tjid_testkit::mime::{build, MailSpec, NameEncoding, Part};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};

fn with_attachment(name: &str, data: Vec<u8>) -> Vec<u8> {
    let mut spec = MailSpec::new(
        "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
        name,
        &format!("<{name}@bad.tjid>"),
        "Wed, 18 Nov 2026 10:00:00 +0100",
    );
    spec.parts.push(Part::File {
        name: name.into(),
        content_type: "application/pdf".into(),
        data,
        encoding: NameEncoding::Plain,
    });
    build(&spec)
}

fn good_pdf() -> Vec<u8> {
    render(&[FilledForm {
        kind: FormKind::Order,
        layout: Layout::SameLine,
        values: &example_values(FormKind::Order),
    }])
    .unwrap()
}

/// A PDF whose one content stream inflates to `size` zero bytes.
fn deflate_bomb(size: usize) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..size / chunk.len() {
        enc.write_all(&chunk).unwrap();
    }
    let stream = enc.finish().unwrap();
    let mut pdf = Vec::new();
    let mut offsets = Vec::new();
    pdf.extend_from_slice(b"%PDF-1.7\n");
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>".to_vec(),
        [
            format!(
                "<< /Length {} /Filter /FlateDecode >>\nstream\n",
                stream.len()
            )
            .into_bytes(),
            stream,
            b"\nendstream".to_vec(),
        ]
        .concat(),
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn encrypted_pdf(dir: &std::path::Path) -> Option<Vec<u8>> {
    let plain = dir.join("plain.pdf");
    let locked = dir.join("locked.pdf");
    std::fs::write(&plain, good_pdf()).unwrap();
    let status = std::process::Command::new("qpdf")
        .args(["--encrypt", "hemligt", "hemligt", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .status()
        .ok()?;
    status.success().then(|| std::fs::read(&locked).unwrap())
}

#[test]
fn every_broken_input_gets_an_outcome_and_the_run_goes_on() {
    let inst = Installation::new("");
    let dir = inst.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = good_pdf();
    let mut expected_unreadable = vec![];
    let put =
        |name: &str, raw: Vec<u8>| std::fs::write(dir.join(format!("{name}.eml")), raw).unwrap();

    put(
        "a_truncated_pdf",
        with_attachment("a_truncated_pdf", good[..good.len() / 2].to_vec()),
    );
    expected_unreadable.push("a_truncated_pdf");
    put(
        "b_garbage_named_pdf",
        with_attachment(
            "b_garbage_named_pdf",
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    );
    expected_unreadable.push("b_garbage_named_pdf");
    put(
        "c_deflate_bomb",
        with_attachment("c_deflate_bomb", deflate_bomb(300 << 20)),
    );
    match encrypted_pdf(&inst.path("")) {
        Some(pdf) => {
            put("d_encrypted_pdf", with_attachment("d_encrypted_pdf", pdf));
            expected_unreadable.push("d_encrypted_pdf");
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "qpdf is needed to make the encrypted PDF"
            );
            eprintln!("!!! SKIPPING the encrypted-PDF input: qpdf is not installed");
        }
    }
    put("e_malformed_mime", b"From: a@b.se\r\nSubject: trasig\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--X".to_vec());
    put(
        "f_no_headers",
        b"just some text without any header at all\r\n".to_vec(),
    );
    put("g_empty", Vec::new());
    put(
        "h_binary_garbage",
        (0..3000u32).map(|i| (i * 31 % 256) as u8).collect(),
    );
    put("i_headers_only", b"From: a@b.se\r\nSubject: x\r\n".to_vec());
    // The run goes on: a good email after all the bad ones is still processed.
    put("z_good", with_attachment("z_good", good.clone()));

    let out = inst
        .command()
        .args(["process", "--dry-run", "--json", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = golden::count_emails(&dir);
    assert_eq!(lines.len(), count, "one outcome per input");
    for line in &lines {
        let source = line["source"].as_str().unwrap();
        let decision = line["decision"].as_str().unwrap();
        assert!(
            ["processed", "ignored", "quarantined"].contains(&decision),
            "{line}"
        );
        if expected_unreadable.iter().any(|n| source.contains(n)) {
            assert_eq!(
                line["cases"][0]["reasons"][0]["code"], "unreadable_attachment",
                "{line}"
            );
        }
        if source.contains("c_deflate_bomb") {
            assert_eq!(line["decision"], "processed", "{line}");
        }
        if source.contains("g_empty") {
            assert_eq!(decision, "quarantined", "{line}");
        }
    }
    let last = lines.last().unwrap();
    assert_eq!(last["cases"][0]["decision"], "queued", "{last}");
}

#[test]
fn a_panic_inside_one_email_quarantines_it_and_the_run_goes_on() {
    let inst = Installation::new("");
    let dir = inst.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.eml"), with_attachment("boom", good_pdf())).unwrap();
    std::fs::write(dir.join("b.eml"), with_attachment("fine", good_pdf())).unwrap();
    let out = inst
        .command()
        .env("TJID_DEBUG_PANIC_ON_SUBJECT", "boom")
        .args(["process", "--json", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["decision"], "quarantined");
    assert!(lines[0]["error"].as_str().unwrap().contains("panic"));
    assert_eq!(lines[1]["cases"][0]["decision"], "queued");
}
