//! A case held for verification (SPEC §4.4) from a real scan: the email is read by the intake
//! (OCR, field boxes and all); if its reading is certain, one field's value is smudged the way
//! OCR misreads an address (`@` → `G`) and the case is held on that field, as the check stage
//! holds it. Recorded through the store like `process` records, with the email as its original
//! (a `file:` source), so the case page can show the page and the crops.
#![allow(dead_code)]

use std::path::Path;

use tjid_intake::case::{Decision, Finding, ReasonCode, WarningCode};
use tjid_intake::config::Settings;
use tjid_intake::pipeline::Intake;
use tjid_intake::store::{MailRecord, Recorded, Store};

/// The held case: its number, the field it waits on, the value as read and the right one.
pub struct Held {
    pub case_id: String,
    pub field: String,
    pub read: String,
    pub right: String,
}

pub const SCAN: &str = "scans/scan_order_table_200dpi_bitonal_png.eml";

/// Copies `fixtures/<fixture>` to `dir` and records it as a held case.
pub async fn record_held_scan(config: &Path, store: &Store, dir: &Path, fixture: &str) -> Held {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir).unwrap();
    let eml = dir.join(Path::new(fixture).file_name().unwrap());
    std::fs::copy(root.join("fixtures").join(fixture), &eml).unwrap();
    let raw = std::fs::read(&eml).unwrap();
    let settings = Settings::load_with_env(Some(config), []).unwrap();
    let intake = Intake::load(settings.intake_parts()).unwrap();
    let analysis = intake
        .analyse(&raw, chrono::Utc::now().date_naive())
        .await
        .unwrap();
    let mail = analysis.mail.clone().unwrap();
    let mut case = analysis.cases[0].clone();
    let (field, read, right) = if case.held() {
        let field = case.verify[0].unwrap_or("-").to_string();
        let read = case.fields.get(&field).unwrap_or("").to_string();
        (field, read.clone(), read)
    } else {
        let field = ["epost", "vc_epost"]
            .into_iter()
            .find(|f| case.context.field_boxes.iter().any(|b| b.field == *f))
            .expect("the scan has a box for an e-mail address");
        let right = case.fields.get(field).unwrap().to_string();
        let read = right.replace('@', "G");
        for (k, v) in case.fields.0.iter_mut() {
            if *k == field {
                *v = Some(read.clone());
            }
        }
        case.reasons
            .push(Finding::new(ReasonCode::InvalidField, Some(field)));
        let doubt = Finding::new(WarningCode::LowOcrConfidence, Some(field));
        if !case.warnings.contains(&doubt) {
            case.warnings.push(doubt);
        }
        case.decision = Decision::Rejected;
        case.verify = vec![Some(field)];
        (field.to_string(), read, right)
    };
    let now = chrono::Utc::now().timestamp_millis();
    let record = MailRecord {
        source_ref: format!("file:{}#held", eml.display()),
        message_id: mail.message_id.clone(),
        content_hash: analysis.content_hash.clone(),
        received_at: now,
        email_date: mail.date.map(|d| d.to_rfc3339()),
        sender: mail.from.clone(),
        subject: mail.subject.clone(),
        headers: mail.raw_headers.clone(),
        ignored: None,
        error: None,
        bounce: None,
    };
    let render = |_: &tjid_intake::case::CheckedCase, _: &str, _: &str| None;
    let case_id = match store.record(&record, &[case], &render, now).await.unwrap() {
        Recorded::Processed { case_ids, .. } => case_ids[0].clone(),
        other => panic!("not recorded: {other:?}"),
    };
    Held {
        case_id,
        field,
        read,
        right,
    }
}
