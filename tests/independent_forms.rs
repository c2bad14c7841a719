//! The independent fixture family (issue 9, part 5): forms drawn by reportlab in five designs
//! (not by the project's own writer), scanned by Ghostscript + PIL/numpy (not pdftoppm), with
//! the expected JSON written by the generator from the values it drew — never from the reader.
//! Regenerate with `/usr/bin/python3 fixtures/independent/generate.py` (see
//! fixtures/independent/README.md).
//!
//! Every `fixtures/independent/mail/NAME.eml` is run through
//! `process --dry-run --json` with `tests/independent.toml` and compared with
//! `NAME.expected.json`. The bar of issue 9 is every case decision right, 100 % of text-PDF
//! fields and at least 98 % of scan fields exact (null included), no case expected `queued`
//! `rejected` with an empty `verify` list (a wrong rejection that would reach a provider), and
//! reason codes right wherever the decision is. The test fails on any wrong rejection, any
//! text-PDF field, any wrong decision and scan fields below 98 %; reason codes that differ
//! where the decision is right are printed.
//!
//! The full report (per email: decision, reasons, every mismatching field with expected and
//! actual) is printed and written to `$CARGO_TARGET_DIR/independent-report.txt` (default
//! `target/`), and each failing email's actual output to `mail/NAME.failed`.
//!
//! Needs `tesseract` with the Swedish model: fails when `CI` is set, skipped loudly otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[allow(dead_code)]
#[path = "support/golden.rs"]
mod golden;

use golden::ocr_ready;

const DIR: &str = "fixtures/independent/mail";
const CONFIG: &str = "tests/independent.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn report_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"));
    let _ = std::fs::create_dir_all(&target);
    target.join("independent-report.txt")
}

fn reason_set(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["code"].as_str().unwrap_or("?").to_string(),
                        r["field"].as_str().unwrap_or("-").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fmt_reasons(s: &BTreeSet<(String, String)>) -> String {
    if s.is_empty() {
        return String::new();
    }
    s.iter()
        .map(|(c, f)| format!("{c}:{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "<absent>".into(),
        Some(v) => v.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    fields: usize,
    exact: usize,
}

impl Tally {
    fn pct(&self) -> f64 {
        if self.fields == 0 {
            100.0
        } else {
            100.0 * self.exact as f64 / self.fields as f64
        }
    }
}

#[test]
fn independent_forms_are_read_without_wrong_rejections() {
    if !ocr_ready() {
        return;
    }
    let dir = root().join(DIR);
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures/independent/mail") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            expected.insert(stem.to_string(), serde_json::from_str(&text).unwrap());
        }
    }
    assert!(
        expected.len() >= 20,
        "the independent family is there ({} emails)",
        expected.len()
    );

    let stdout = golden::process_dry_run(DIR, CONFIG);
    let mut actual: BTreeMap<String, Value> = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("each line is JSON");
        let source = v["source"].as_str().unwrap_or("").to_string();
        let stem = Path::new(&source)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        actual.insert(stem, v);
    }

    let mut report = String::new();
    let mut text = Tally::default();
    let mut scan = Tally::default();
    let (mut cases_total, mut decisions_right, mut reasons_right) = (0usize, 0usize, 0usize);
    let mut safety: Vec<String> = Vec::new();
    let mut decision_wrong: Vec<String> = Vec::new();
    let mut reasons_wrong: Vec<String> = Vec::new();
    let mut field_fail_count: BTreeMap<String, usize> = BTreeMap::new();

    for (stem, exp) in &expected {
        let variant = exp["variant"].as_str().unwrap_or("scan");
        let failed_path = dir.join(format!("{stem}.failed"));
        let mut lines = String::new();
        let mut email_ok = true;
        let Some(act) = actual.get(stem) else {
            writeln!(report, "✗ {stem} [{variant}]: NO OUTPUT LINE").unwrap();
            decision_wrong.push(stem.clone());
            continue;
        };
        if act["decision"] != exp["decision"] {
            email_ok = false;
            writeln!(
                lines,
                "    email decision: expected {} actual {} (ignored_reason {})",
                exp["decision"], act["decision"], act["ignored_reason"]
            )
            .unwrap();
        }
        let exp_cases = exp["cases"].as_array().cloned().unwrap_or_default();
        let act_cases = act["cases"].as_array().cloned().unwrap_or_default();
        if exp_cases.len() != act_cases.len() {
            email_ok = false;
            writeln!(
                lines,
                "    cases: expected {} actual {}",
                exp_cases.len(),
                act_cases.len()
            )
            .unwrap();
        }
        for (i, ec) in exp_cases.iter().enumerate() {
            cases_total += 1;
            let null = Value::Null;
            let ac = act_cases.get(i).unwrap_or(&null);
            let exp_dec = ec["decision"].as_str().unwrap_or("");
            let act_dec = ac["decision"].as_str().unwrap_or("<none>");
            let exp_r = reason_set(&ec["reasons"]);
            let act_r = reason_set(&ac["reasons"]);
            let verify_empty = ac["verify"].as_array().is_none_or(|v| v.is_empty());
            if ac["kind"] != ec["kind"] {
                writeln!(
                    lines,
                    "    case {i}: kind expected {} actual {}",
                    ec["kind"], ac["kind"]
                )
                .unwrap();
            }
            if exp_dec == act_dec {
                decisions_right += 1;
                if exp_r == act_r {
                    reasons_right += 1;
                } else {
                    email_ok = false;
                    reasons_wrong.push(stem.clone());
                }
            } else {
                email_ok = false;
                decision_wrong.push(stem.clone());
            }
            if exp_dec == "queued" && act_dec == "rejected" && verify_empty {
                safety.push(stem.clone());
            }
            writeln!(
                lines,
                "    case {i} ({}): decision expected {exp_dec} actual {act_dec}{}; reasons expected [{}] actual [{}]; verify {}; warnings {}",
                ec["kind"].as_str().unwrap_or("?"),
                if exp_dec == act_dec { "" } else { "  <-- WRONG" },
                fmt_reasons(&exp_r),
                fmt_reasons(&act_r),
                show(ac.get("verify")),
                show(ac.get("warnings")),
            )
            .unwrap();
            let tally = if variant == "text" {
                &mut text
            } else {
                &mut scan
            };
            let ef = ec["fields"].as_object().cloned().unwrap_or_default();
            for (key, ev) in &ef {
                tally.fields += 1;
                let av = ac["fields"].get(key);
                if av == Some(ev) {
                    tally.exact += 1;
                } else {
                    email_ok = false;
                    *field_fail_count.entry(key.clone()).or_default() += 1;
                    writeln!(
                        lines,
                        "      field {key}: expected {ev}  actual {}",
                        show(av)
                    )
                    .unwrap();
                }
            }
        }
        let mark = if email_ok { "✓" } else { "✗" };
        writeln!(report, "{mark} {stem} [{variant}]").unwrap();
        if !email_ok {
            report.push_str(&lines);
            let _ = std::fs::write(
                &failed_path,
                serde_json::to_string_pretty(act).unwrap() + "\n",
            );
        } else {
            let _ = std::fs::remove_file(&failed_path);
        }
    }
    for stem in actual.keys() {
        if !expected.contains_key(stem) {
            writeln!(report, "? {stem}: output without an expected file").unwrap();
        }
    }

    let mut summary = String::new();
    writeln!(summary, "==== independent forms (issue 9) ====").unwrap();
    writeln!(
        summary,
        "emails {}  cases {cases_total}  decisions right {decisions_right}/{cases_total}  reasons right (of right decisions) {reasons_right}/{decisions_right}",
        expected.len()
    )
    .unwrap();
    writeln!(
        summary,
        "fields exact: text PDFs {}/{} ({:.1} %, bar 100 %)  scans {}/{} ({:.1} %, bar 98 %)",
        text.exact,
        text.fields,
        text.pct(),
        scan.exact,
        scan.fields,
        scan.pct()
    )
    .unwrap();
    writeln!(
        summary,
        "safety violations (expected queued, rejected with empty verify): {} {:?}",
        safety.len(),
        safety
    )
    .unwrap();
    writeln!(summary, "wrong decisions: {decision_wrong:?}").unwrap();
    writeln!(summary, "wrong reasons: {reasons_wrong:?}").unwrap();
    writeln!(summary, "mismatching fields by key: {field_fail_count:?}").unwrap();
    let full = format!("{summary}\n{report}");
    println!("{full}");
    let path = report_path();
    std::fs::write(&path, &full).unwrap();
    println!("report written to {}", path.display());

    // Issue 9's bar: no wrong rejection reaches a provider, digital text is read exactly,
    // every decision is right, and 98 % of scan fields are exact (98.2 % today). Reason codes
    // that differ where the decision is right are reported, not failed.
    let mut failures = Vec::new();
    if !safety.is_empty() {
        failures.push(format!("{} safety violation(s)", safety.len()));
    }
    if text.exact != text.fields {
        failures.push(format!("text-PDF fields {:.1} % < 100 %", text.pct()));
    }
    if cases_total == 0 || decisions_right < cases_total {
        failures.push(format!("decisions right {decisions_right}/{cases_total}"));
    }
    if scan.pct() < 98.0 {
        failures.push(format!("scan fields {:.1} % < 98 %", scan.pct()));
    }
    if decisions_right != cases_total || scan.pct() < 98.0 || reasons_right != decisions_right {
        println!(
            "NOT YET AT THE BAR OF ISSUE 9: decisions {decisions_right}/{cases_total}, reasons {reasons_right}/{decisions_right}, scan fields {:.1} % (98 % asked)",
            scan.pct()
        );
    }
    assert!(
        failures.is_empty(),
        "the independent family reads worse than the floor: {}\n(see {})",
        failures.join("; "),
        path.display()
    );
}
