//! The PDFs are checked with independent tools when they are installed: `qpdf --check`,
//! `pdftotext -layout` (poppler-utils) and Python's pypdf (interpreter from `$PYPDF_PYTHON`,
//! else `python3`); a check whose tool is missing is skipped with a note on stderr. The
//! samples are written to `$PDF_WRITER_OUT` (else a temp directory): the blank forms and the
//! example of each layout as `TJID-10x-<Layout>.pdf`, the other cases under `extra/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use lopdf::Document;
use tjid_intake::forms::pdf_writer::{blank_form, SIGNATURE_FIELD};

use super::*;

const LAYOUTS: [Layout; 5] = [
    Layout::Fillable,
    Layout::SameLine,
    Layout::SameLineTwoPages,
    Layout::Table,
    Layout::Legacy,
];

/// Where the samples go: `$PDF_WRITER_OUT`, else a directory in the system's temp dir.
fn out_dir() -> PathBuf {
    let dir = std::env::var_os("PDF_WRITER_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tjid-intake-pdf-writer"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes a sample to `out/` (the layouts of the example values and the blank forms) or,
/// for the other cases of the tests, to `out/extra/`.
fn write(name: &str, pdf: &[u8]) -> PathBuf {
    let dir = if name.starts_with("TJID-") {
        out_dir()
    } else {
        out_dir().join("extra")
    };
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    path
}

fn qpdf_check(path: &Path) {
    if !tool("qpdf") {
        eprintln!("qpdf not installed, not checked: {}", path.display());
        return;
    }
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "qpdf --check {}: {text}",
        path.display()
    );
    assert!(
        !text.contains("WARNING"),
        "qpdf --check {}: {text}",
        path.display()
    );
}

/// `pdftotext -layout` of the pages `first..=last` (all when `None`), or `None` without it.
fn pdftotext(path: &Path, pages: Option<(u32, u32)>) -> Option<String> {
    if !tool("pdftotext") {
        eprintln!(
            "pdftotext not installed, text not checked: {}",
            path.display()
        );
        return None;
    }
    let mut cmd = Command::new("pdftotext");
    cmd.arg("-layout").arg("-enc").arg("UTF-8");
    if let Some((f, l)) = pages {
        cmd.args(["-f", &f.to_string(), "-l", &l.to_string()]);
    }
    let out = cmd.arg(path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext {}", path.display());
    Some(String::from_utf8(out.stdout).unwrap())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn file_name(kind: FormKind, layout: Layout) -> String {
    format!("{}-{:?}.pdf", kind.form_id(), layout)
}

/// The text a value shows as in a text layout (choices: the option texts with their marks).
fn expected_value_texts(f: &FieldSpec, v: &str, layout: Layout) -> Vec<String> {
    match f.field_type {
        FieldType::Text => vec![v.to_string()],
        FieldType::Choice(options) => {
            let (marked, _) = chosen(options, Some(v));
            match layout {
                Layout::SameLine | Layout::SameLineTwoPages => {
                    vec![bracketed_choices(options, &marked)]
                }
                _ => options
                    .iter()
                    .zip(&marked)
                    .map(|(o, &m)| {
                        if m {
                            format!("X {}", o.label)
                        } else {
                            o.label.to_string()
                        }
                    })
                    .collect(),
            }
        }
        FieldType::YesNo => match layout {
            Layout::SameLine | Layout::SameLineTwoPages => vec![v.to_string()],
            _ if yes_no(Some(v)) == YesNoValue::Yes => vec!["X".to_string()],
            _ => vec![],
        },
    }
}

fn check_text_layout(
    kind: FormKind,
    layout: Layout,
    values: &BTreeMap<String, String>,
    text: &str,
) {
    let lines: Vec<String> = text.lines().map(collapse).collect();
    let all = lines.join("\n");
    assert!(
        all.contains(&collapse(kind.title())),
        "{layout:?}: no title in\n{text}"
    );
    assert!(
        all.contains(kind.form_id()),
        "{layout:?}: no form id in\n{text}"
    );
    assert!(
        all.contains(SIGNATURE_LABEL),
        "{layout:?}: no signature box in\n{text}"
    );
    for f in kind.fields() {
        let label = if layout == Layout::Legacy {
            f.label.to_uppercase()
        } else {
            f.label.to_string()
        };
        let v = values.get(f.key).map(String::as_str).unwrap_or("");
        let expected = expected_value_texts(f, v, layout);
        match layout {
            Layout::SameLine | Layout::SameLineTwoPages => {
                let line = format!("{}: {}", label, expected[0]);
                assert!(
                    lines.iter().any(|l| *l == collapse(&line)),
                    "{layout:?}: no line `{line}` in\n{text}"
                );
            }
            Layout::Legacy => {
                let line = lines
                    .iter()
                    .find(|l| **l == label || l.starts_with(&format!("{label} ")))
                    .unwrap_or_else(|| panic!("{layout:?}: no line for {label} in\n{text}"));
                for e in &expected {
                    assert!(
                        line.contains(&collapse(e)),
                        "{layout:?}: `{e}` not on line `{line}`"
                    );
                }
                // The label and the value are apart by a clear gap.
                let raw = text.lines().find(|l| collapse(l) == *line).unwrap();
                if let Some(e) = expected.first().filter(|e| !e.is_empty()) {
                    let gap = &raw[raw.find(&label).unwrap() + label.len()..];
                    assert!(
                        gap.starts_with("   "),
                        "{layout:?}: no gap after {label} in `{raw}` ({e})"
                    );
                }
            }
            Layout::Table => {
                // The label, and on the next non-empty line, the value.
                let i = lines
                    .iter()
                    .position(|l| l.contains(&label))
                    .unwrap_or_else(|| panic!("Table: no label {label} in\n{text}"));
                let next = lines[i + 1..].iter().find(|l| !l.is_empty()).unwrap();
                for e in &expected {
                    assert!(
                        next.contains(&collapse(e)),
                        "Table: `{e}` not below {label}: `{next}`\n{text}"
                    );
                }
            }
            Layout::Fillable => {
                assert!(
                    all.contains(&label),
                    "Fillable: no label {label} in\n{text}"
                )
            }
        }
    }
}

fn python() -> Option<String> {
    let python = std::env::var("PYPDF_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import pypdf"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("pypdf not available, AcroForm not read back");
    }
    ok.then_some(python)
}

const READ_FIELDS: &str = r#"
import json, sys
from pypdf import PdfReader
r = PdfReader(sys.argv[1])
out = {"fields": {}, "kids": {}}
for name, f in (r.get_fields() or {}).items():
    v = f.get("/V")
    out["fields"][name] = {"ft": str(f.get("/FT")), "v": None if v is None else str(v)}
for page in r.pages:
    for a in page.get("/Annots") or []:
        a = a.get_object()
        if "/Parent" in a:
            p = a["/Parent"].get_object()
            states = [str(k) for k in a["/AP"]["/N"].keys() if k != "/Off"]
            out["kids"].setdefault(str(p["/T"]), []).append([states[0], str(a.get("/AS"))])
print(json.dumps(out))
"#;

fn read_fields(path: &Path) -> Option<serde_json::Value> {
    let python = python()?;
    let out = Command::new(python)
        .args(["-c", READ_FIELDS])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pypdf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn check_acroform(kind: FormKind, values: &BTreeMap<String, String>, path: &Path) {
    let Some(read) = read_fields(path) else {
        return;
    };
    let fields = read["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort();
    let mut expected: Vec<&str> = kind.fields().iter().map(|f| f.key).collect();
    expected.extend([FORM_ID_FIELD, SIGNATURE_FIELD]);
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(fields[FORM_ID_FIELD]["v"], kind.form_id());
    assert_eq!(fields[SIGNATURE_FIELD]["ft"], "/Sig");
    for f in kind.fields() {
        let v = values
            .get(f.key)
            .map(String::as_str)
            .filter(|v| !v.is_empty());
        let got = &fields[f.key];
        match f.field_type {
            FieldType::Text => {
                assert_eq!(got["ft"], "/Tx");
                assert_eq!(got["v"].as_str(), v, "{}", f.key);
            }
            FieldType::Choice(options) => {
                assert_eq!(got["ft"], "/Btn");
                let (marked, _) = chosen(options, v);
                let first = options
                    .iter()
                    .zip(&marked)
                    .find(|(_, &m)| m)
                    .map(|(o, _)| format!("/{}", o.export));
                assert_eq!(got["v"].as_str(), first.as_deref(), "{}", f.key);
                let kids = read["kids"][f.key].as_array().unwrap();
                assert_eq!(kids.len(), options.len());
                for ((o, &m), kid) in options.iter().zip(&marked).zip(kids) {
                    assert_eq!(kid[0], format!("/{}", o.export));
                    assert_eq!(
                        kid[1],
                        if m {
                            format!("/{}", o.export)
                        } else {
                            "/Off".into()
                        },
                        "{}",
                        f.key
                    );
                }
            }
            FieldType::YesNo => {
                assert_eq!(got["ft"], "/Btn");
                let want = match yes_no(v) {
                    YesNoValue::Yes => Some("/Ja"),
                    YesNoValue::No => Some("/Off"),
                    _ => None,
                };
                assert_eq!(got["v"].as_str(), want, "{}", f.key);
            }
        }
    }
}

fn check(kind: FormKind, layout: Layout, values: &BTreeMap<String, String>, name: &str) -> PathBuf {
    let pdf = render(&[FilledForm {
        kind,
        layout,
        values,
    }])
    .unwrap();
    let path = write(name, &pdf);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        check_text_layout(kind, layout, values, &text);
    }
    if layout == Layout::Fillable {
        check_acroform(kind, values, &path);
    }
    path
}

#[test]
fn every_layout_of_both_forms_renders_and_reads_back() {
    for kind in FormKind::ALL {
        let values = example_values(kind);
        for layout in LAYOUTS {
            check(kind, layout, &values, &file_name(kind, layout));
        }
    }
}

#[test]
fn blank_forms_are_fillable_with_the_form_id() {
    for kind in FormKind::ALL {
        let path = write(&format!("{}-blank.pdf", kind.form_id()), &blank_form(kind));
        qpdf_check(&path);
        if let Some(text) = pdftotext(&path, None) {
            check_text_layout(kind, Layout::Fillable, &BTreeMap::new(), &text);
            assert!(text.contains(INSTRUCTION.split('.').next().unwrap()));
        }
        check_acroform(kind, &BTreeMap::new(), &path);
    }
}

#[test]
fn broken_values_are_printed_as_given() {
    let mut values = example_values(FormKind::Order);
    values.insert("bestallningstyp".into(), "Nytt,Ersattning".into());
    values.insert("utlamning".into(), String::new());
    values.insert("personnummer".into(), "19121212-1213".into());
    values.insert("mobil".into(), String::new());
    values.insert("datum".into(), "31/2 2026 (ogiltigt) \\ x".into());
    for layout in LAYOUTS {
        check(
            FormKind::Order,
            layout,
            &values,
            &format!("broken-{:?}.pdf", layout),
        );
    }
    let mut values = example_values(FormKind::Deregistration);
    values.insert("klippt_kort".into(), NO.into());
    values.insert("kortnummer".into(), "9752 2679".into());
    for layout in LAYOUTS {
        check(
            FormKind::Deregistration,
            layout,
            &values,
            &format!("broken-dereg-{:?}.pdf", layout),
        );
    }
}

#[test]
fn both_options_marked_in_a_fillable_form() {
    let mut values = example_values(FormKind::Order);
    values.insert("bestallningstyp".into(), "Nytt,Fornyelse".into());
    let path = check(
        FormKind::Order,
        Layout::Fillable,
        &values,
        "both-marked-Fillable.pdf",
    );
    if let Some(read) = read_fields(&path) {
        let states: Vec<&str> = read["kids"]["bestallningstyp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k[1].as_str().unwrap())
            .collect();
        assert_eq!(states, ["/Nytt", "/Off", "/Fornyelse"]);
    }
}

#[test]
fn missing_cut_card_line_is_left_out() {
    let mut values = example_values(FormKind::Deregistration);
    values.remove("klippt_kort");
    let label = FormKind::Deregistration.field("klippt_kort").unwrap().label;
    for layout in [
        Layout::SameLine,
        Layout::Legacy,
        Layout::Table,
        Layout::Fillable,
    ] {
        let pdf = render(&[FilledForm {
            kind: FormKind::Deregistration,
            layout,
            values: &values,
        }])
        .unwrap();
        let path = write(&format!("no-cut-card-{layout:?}.pdf"), &pdf);
        qpdf_check(&path);
        let Some(text) = pdftotext(&path, None) else {
            continue;
        };
        let has = text.to_lowercase().contains(&label.to_lowercase());
        assert_eq!(
            has,
            matches!(layout, Layout::Table | Layout::Fillable),
            "{layout:?}:\n{text}"
        );
        if layout == Layout::Fillable {
            check_acroform(FormKind::Deregistration, &values, &path);
        }
    }
}

#[test]
fn characters_outside_win_ansi_are_replaced() {
    let mut values = example_values(FormKind::Order);
    values.insert("efternamn".into(), "Łukasiewicz 🚀 Øre\tÉn".into());
    values.insert(
        "befattning".into(),
        "Läkare (ST) – ”allmänmedicin” € \\".into(),
    );
    values.insert("vardgivare_namn".into(), "X".repeat(300));
    for layout in LAYOUTS {
        let pdf = render(&[FilledForm {
            kind: FormKind::Order,
            layout,
            values: &values,
        }])
        .unwrap();
        let path = write(&format!("charset-{layout:?}.pdf"), &pdf);
        qpdf_check(&path);
        if layout == Layout::Fillable {
            check_acroform(FormKind::Order, &values, &path);
            continue;
        }
        let Some(text) = pdftotext(&path, None) else {
            continue;
        };
        assert!(text.contains("?ukasiewicz ? Øre Én"), "{layout:?}:\n{text}");
        assert!(
            text.contains("Läkare (ST) – ”allmänmedicin” € \\"),
            "{layout:?}:\n{text}"
        );
    }
}

#[test]
fn continuation_page_has_no_title() {
    for kind in FormKind::ALL {
        let values = example_values(kind);
        let pdf = render(&[FilledForm {
            kind,
            layout: Layout::SameLineTwoPages,
            values: &values,
        }])
        .unwrap();
        let path = write(&format!("two-pages-{}.pdf", kind.form_id()), &pdf);
        let doc = Document::load_mem(&pdf).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        let (Some(p1), Some(p2)) = (
            pdftotext(&path, Some((1, 1))),
            pdftotext(&path, Some((2, 2))),
        ) else {
            continue;
        };
        assert!(p1.contains(kind.title()) && p1.contains("Sida 1 av 2"));
        assert!(
            !p2.contains(kind.title())
                && !p2.contains(kind.form_id())
                && p2.contains("Sida 2 av 2")
        );
        assert!(p2.contains("Verksamhetschef: ") && !p1.contains("Verksamhetschef"));
        assert!(p2.contains(SIGNATURE_LABEL) && !p1.contains(SIGNATURE_LABEL));
    }
}

#[test]
fn several_forms_in_one_document() {
    let order = example_values(FormKind::Order);
    let dereg = example_values(FormKind::Deregistration);
    let forms = [
        FilledForm {
            kind: FormKind::Order,
            layout: Layout::SameLine,
            values: &order,
        },
        FilledForm {
            kind: FormKind::Deregistration,
            layout: Layout::Table,
            values: &dereg,
        },
        FilledForm {
            kind: FormKind::Order,
            layout: Layout::SameLineTwoPages,
            values: &order,
        },
        FilledForm {
            kind: FormKind::Deregistration,
            layout: Layout::Legacy,
            values: &dereg,
        },
    ];
    let pdf = render(&forms).unwrap();
    let path = write("several-forms.pdf", &pdf);
    qpdf_check(&path);
    assert_eq!(Document::load_mem(&pdf).unwrap().get_pages().len(), 5);
    if let Some(text) = pdftotext(&path, None) {
        let titles: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with(FormKind::Order.title())
                    || l.starts_with(FormKind::Deregistration.title())
            })
            .collect();
        assert_eq!(titles.len(), 4, "{titles:?}");
    }
}

#[test]
fn refused_documents() {
    let values = example_values(FormKind::Order);
    let fillable = FilledForm {
        kind: FormKind::Order,
        layout: Layout::Fillable,
        values: &values,
    };
    let table = FilledForm {
        kind: FormKind::Order,
        layout: Layout::Table,
        values: &values,
    };
    assert!(matches!(
        render(&[fillable, table]),
        Err(WriteError::FillableNotAlone { count: 2 })
    ));
    assert!(matches!(render(&[]), Err(WriteError::NoForms)));
    let dereg = FilledForm {
        kind: FormKind::Deregistration,
        layout: Layout::Table,
        values: &values,
    };
    assert!(matches!(
        render(&[dereg]),
        Err(WriteError::UnknownField { .. })
    ));
}

#[test]
fn text_page_has_no_form() {
    let long = "Hej! Här kommer en beställning av eTjänstekort för vår nya medarbetare, se bifogad blankett. ".repeat(4);
    let lines = [
        "Faktura 2026-0042",
        "",
        "Vårdcentralen Ekmansgatan",
        long.as_str(),
        "Belopp: 1 250 kr",
    ];
    let pdf = render_text_page(&lines);
    let path = write("text-page.pdf", &pdf);
    qpdf_check(&path);
    assert_eq!(Document::load_mem(&pdf).unwrap().get_pages().len(), 1);
    if let Some(text) = pdftotext(&path, None) {
        assert!(text.contains("Faktura 2026-0042") && text.contains("Belopp: 1 250 kr"));
        assert!(!text.contains("TJID-10"));
    }
    let many: Vec<String> = (0..120).map(|i| format!("Rad {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let path = write("text-page-long.pdf", &render_text_page(&many));
    if let Some(text) = pdftotext(&path, None) {
        assert!(text.contains("Rad 119"));
    }
}

#[test]
fn example_values_fill_every_field() {
    for kind in FormKind::ALL {
        let values = example_values(kind);
        // An order's example is signed too (the signature is no field of SPEC §2.2's table).
        let signed = usize::from(kind == FormKind::Order);
        assert_eq!(values.len(), kind.fields().len() + signed);
        assert_eq!(values.contains_key(SIGNATURE_KEY), signed == 1);
        for f in kind.fields() {
            let v = &values[f.key];
            assert!(!v.is_empty(), "{}", f.key);
            if let FieldType::Choice(options) = f.field_type {
                assert_eq!(chosen(options, Some(v)).0.iter().filter(|&&m| m).count(), 1);
            }
        }
    }
    let card: Vec<u32> = example_values(FormKind::Deregistration)["kortnummer"]
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    assert_eq!(card.len(), 19);
    assert_eq!(card[..4], [9, 7, 5, 2]);
    let luhn: u32 = card
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    assert_eq!(luhn % 10, 0);
}

#[test]
fn legacy_order_puts_the_person_first() {
    let keys: Vec<&str> = legacy_order(ORDER_FIELDS).iter().map(|f| f.key).collect();
    assert_eq!(
        keys[0],
        ORDER_FIELDS
            .iter()
            .find(|f| f.label == "Förnamn")
            .unwrap()
            .key
    );
    let unit = keys
        .iter()
        .position(|k| k.starts_with("vardenhet_"))
        .unwrap();
    let provider = keys
        .iter()
        .position(|k| k.starts_with("vardgivare_"))
        .unwrap();
    let choice = keys.iter().position(|k| {
        ORDER_FIELDS
            .iter()
            .any(|f| f.key == *k && f.field_type != FieldType::Text)
    });
    assert!(unit < provider && provider < choice.unwrap());
    assert_eq!(keys.len(), ORDER_FIELDS.len());
}
