//! The golden-set runner shared by tests/golden.rs (digital forms) and tests/ocr_golden.rs
//! (scans): every `DIR/NAME.eml` must give, through `process --dry-run --json`, the JSON in
//! `DIR/NAME.json` without `case_id`. On a mismatch the actual output is written to
//! `NAME.json.failed` beside it, and removed again once the output matches.

use std::path::Path;
use std::process::Command;

/// The number of `.eml` files in `dir`.
pub fn count_emails(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count()
}

/// Whether `tesseract` with the Swedish model can run here. Without it a test of scans fails
/// when `CI` is set and is skipped, loudly, otherwise.
pub fn ocr_ready() -> bool {
    if tjid_intake::ocr::available("swe") {
        return true;
    }
    let msg =
        "tesseract with the Swedish model (tesseract-ocr, tesseract-ocr-swe) is not installed";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}: it is required in CI");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    false
}

/// The standard output of `process --dry-run --json DIR` with `config` (paths relative to the
/// crate root): one JSON line per email.
pub fn process_dry_run(dir: &str, config: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_tjid-intake"))
        .current_dir(root)
        .env("OMP_THREAD_LIMIT", "1")
        .args(["--config", config, "process", "--dry-run", "--json", dir])
        .output()
        .expect("run tjid-intake");
    assert!(
        out.status.success(),
        "process failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs `process --dry-run --json DIR` with `config` and compares every email's output with
/// its golden file.
pub fn run_golden_set(dir: &str, config: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stdout = process_dry_run(dir, config);
    let emails = count_emails(&root.join(dir));
    assert!(emails > 0, "no fixtures in {dir}");
    assert_eq!(
        stdout.lines().count(),
        emails,
        "one JSON line per email, nothing else:\n{stdout}"
    );
    let mut failures = Vec::new();
    for line in stdout.lines() {
        let mut actual: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        for case in actual["cases"].as_array_mut().expect("cases array") {
            let id = case
                .as_object_mut()
                .unwrap()
                .remove("case_id")
                .expect("case_id");
            let id = id.as_str().unwrap();
            assert!(
                id.len() == 16
                    && id.starts_with("TJID-")
                    && id[10..].chars().all(|c| c.is_ascii_digit()),
                "case number {id}"
            );
        }
        let source = actual["source"].as_str().unwrap().to_string();
        let golden = root.join(source.replace(".eml", ".json"));
        let failed = golden.with_extension("json.failed");
        let expected: Option<serde_json::Value> = std::fs::read_to_string(&golden)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if expected.as_ref() == Some(&actual) {
            let _ = std::fs::remove_file(&failed);
        } else {
            std::fs::write(
                &failed,
                serde_json::to_string_pretty(&actual).unwrap() + "\n",
            )
            .unwrap();
            failures.push(source);
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (see *.json.failed): {failures:#?}"
    );
}
