//! Staff verify an uncertain reading (SPEC §4.4, issue 9). A case held for verification
//! (state `held`, no reply yet) is checked again with the values staff confirm or correct,
//! then decided and replied to as usual. A `rejected` case (already answered) can have its
//! fields corrected the same way, without a new reply, so that a later overturn carries the
//! corrected values forward. An accepted case still open (queued, ordered at Telia, card
//! ready) can have any field corrected too (a misread address must not reach Telia as read),
//! checked again as the intake checks: a correction that would make it a rejection is
//! refused, with the reasons (staff reject on its page if that is what they mean). Web and
//! CLI both go through [`verify`].

use chrono::DateTime;
use serde_json::Value;

use crate::case::{CaseContext, CheckedCase, Decision, Finding, ReasonCode, WarningCode};
use crate::directory::DirectoryError;
use crate::forms::layout::RawForm;
use crate::forms::signature::{SignatureReading, SignatureState};
use crate::forms::spec::{FormKind, SIGNATURE_KEY};
use crate::forms::FieldBox;
use crate::pipeline::parse::parse_mail;
use crate::pipeline::reply::{build_reply, ReplyError};
use crate::pipeline::Intake;
use crate::store::{CaseRow, Store, StoreError, Verification};

/// One verification by a member of staff.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub case_id: String,
    /// The staff user (their user name).
    pub actor: String,
    /// (field key, new value); an empty value removes the field's value.
    pub corrections: Vec<(String, String)>,
    /// The reading (with the corrections) is confirmed: decide and reply. Only for `held`.
    pub confirm: bool,
}

/// What a verification did.
#[derive(Debug, Clone)]
pub struct Verified {
    pub from: String,
    /// The state now: `queued` or `rejected` after a confirmation, else unchanged.
    pub state: String,
    /// The decision of the check with the corrected values.
    pub decision: Decision,
    pub reasons: Vec<Finding<crate::case::ReasonCode>>,
    /// The fields whose value changed.
    pub corrected: Vec<String>,
    /// The reply's outbox id (a confirmed held case with an address to reply to).
    pub reply: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("Ärendet {0} finns inte.")]
    NotFound(String),
    #[error("Ärendets personuppgifter är gallrade; det kan inte ändras.")]
    Purged,
    #[error("Ärendet har ingen blankett, så det finns inga fält att rätta.")]
    NoForm,
    #[error("Fält kan bara rättas i öppna ärenden (att granska, avvisade, att beställa, beställda, kort klart); ärendet är i läget ”{0}”.")]
    NotAllowed(String),
    #[error("Rättelsen ändrades inte: med de nya värdena skulle ärendet avvisas ({0}). Ett godkänt ärende rättas bara så att det förblir giltigt.")]
    WouldReject(String),
    #[error("Ärendet är redan besvarat; rätta fälten utan att bekräfta, och häv sedan avvisningen om den var fel.")]
    AlreadyAnswered,
    #[error("Fältet ”{key}” finns inte i blanketten {form}. Fälten är: {keys}.")]
    UnknownField {
        key: String,
        form: &'static str,
        keys: String,
    },
    #[error("Underskriften anges som ”ja” (underskriven) eller ”nej” (saknas), inte ”{0}”.")]
    SignatureValue(String),
    #[error("Ingenting att göra: inga ändrade fält och ingen bekräftelse.")]
    Nothing,
    #[error("Ärendet ändrades samtidigt av någon annan. Läs in det igen.")]
    Conflict(String),
    #[error("KIV kan inte nås just nu; ingenting ändrades. Försök igen om en stund. ({0})")]
    Directory(#[from] DirectoryError),
    #[error("Svaret kunde inte skapas; ingenting ändrades. ({0})")]
    Reply(#[from] ReplyError),
    #[error("Ett tekniskt fel uppstod; ingenting ändrades. ({0})")]
    Store(StoreError),
    #[error("Ärendets lagrade uppgifter är trasiga: {0}")]
    Corrupt(String),
}

impl VerifyError {
    /// The message for the staff pages: the Swedish text without the technical cause, which
    /// comes from a library in English (the caller logs it).
    pub fn message_sv(&self) -> String {
        match self {
            VerifyError::Directory(_) => {
                "KIV kan inte nås just nu; ingenting ändrades. Försök igen om en stund.".into()
            }
            VerifyError::Reply(_) => "Svaret kunde inte skapas; ingenting ändrades.".into(),
            VerifyError::Store(_) => "Ett tekniskt fel uppstod; ingenting ändrades.".into(),
            VerifyError::Corrupt(_) => {
                "Ärendets lagrade uppgifter är trasiga; ingenting ändrades.".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => VerifyError::Conflict(m),
            other => VerifyError::Store(other),
        }
    }
}

/// The state of a case held for verification.
pub const HELD: &str = crate::store::sqlite::HELD;

/// The states of an accepted case that is still open: its fields can be corrected as long as
/// it stays valid.
pub const OPEN_ACCEPTED: [&str; 3] = ["queued", "ordered_at_telia", "card_ready"];

/// The stored fields of a case: key → value (`None` when absent).
fn stored_fields(case: &CaseRow) -> Result<serde_json::Map<String, Value>, VerifyError> {
    match serde_json::from_str::<Value>(&case.fields) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(VerifyError::Corrupt("fields".into())),
    }
}

/// Checks the corrections against the kind's table; returns them with static keys, the
/// empty value as `None`.
fn parse_corrections(
    kind: FormKind,
    corrections: &[(String, String)],
) -> Result<Vec<(&'static str, Option<String>)>, VerifyError> {
    corrections
        .iter()
        .map(|(key, value)| {
            if kind == FormKind::Order && key.trim() == SIGNATURE_KEY {
                return signature_correction(value).map(|v| (SIGNATURE_KEY, Some(v.to_string())));
            }
            let spec = kind
                .field(key.trim())
                .ok_or_else(|| VerifyError::UnknownField {
                    key: key.clone(),
                    form: kind.form_id(),
                    keys: kind
                        .fields()
                        .iter()
                        .map(|f| f.key)
                        .chain((kind == FormKind::Order).then_some(SIGNATURE_KEY))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            let value = value.trim();
            Ok((spec.key, (!value.is_empty()).then(|| value.to_string())))
        })
        .collect()
}

/// How staff say what the signature box holds: signed (`ja`, `underskriven`) or empty (`nej`,
/// `saknas`). Stored and audited as `underskriven` / `saknas`.
const SIGNED_SV: &str = "underskriven";
const UNSIGNED_SV: &str = "saknas";

fn signature_correction(value: &str) -> Result<&'static str, VerifyError> {
    match value.trim().to_lowercase().as_str() {
        "ja" | "underskriven" | "signed" => Ok(SIGNED_SV),
        "nej" | "saknas" | "" => Ok(UNSIGNED_SV),
        other => Err(VerifyError::SignatureValue(other.to_string())),
    }
}

/// What the intake decided about the signature, from the case's stored findings.
fn stored_signature(case: &CaseRow) -> SignatureState {
    let has = |json: &str, code: &str| {
        serde_json::from_str::<Vec<Value>>(json)
            .unwrap_or_default()
            .iter()
            .any(|f| f["code"].as_str() == Some(code))
    };
    if has(&case.reasons, ReasonCode::SignatureMissing.as_str()) {
        SignatureState::Missing
    } else if has(&case.warnings, WarningCode::SignatureNotChecked.as_str()) {
        SignatureState::NotChecked
    } else {
        SignatureState::Signed
    }
}

fn signature_sv(state: SignatureState) -> Option<String> {
    match state {
        SignatureState::Signed => Some(SIGNED_SV.into()),
        SignatureState::Missing => Some(UNSIGNED_SV.into()),
        SignatureState::NotChecked => None,
    }
}

/// Checks a case again with the corrected values and records the outcome (see the module).
pub async fn verify(
    store: &Store,
    intake: &Intake,
    now_ms: i64,
    request: VerifyRequest,
) -> Result<Verified, VerifyError> {
    let detail = store
        .case_detail(&request.case_id)
        .await?
        .ok_or_else(|| VerifyError::NotFound(request.case_id.clone()))?;
    let case = detail.case;
    if case.purged_at.is_some() {
        return Err(VerifyError::Purged);
    }
    let held = match case.state.as_str() {
        HELD => true,
        "rejected" => false,
        s if OPEN_ACCEPTED.contains(&s) => false,
        other => {
            return Err(VerifyError::NotAllowed(
                crate::casework::lifecycle::state_label_sv(other).to_string(),
            ))
        }
    };
    if request.confirm && !held {
        return Err(VerifyError::AlreadyAnswered);
    }
    let (checked, changed) = match FormKind::parse(&case.kind) {
        Some(kind) => recheck_form(intake, &case, kind, &request).await?,
        // Held without a form (OCR found none in a scan): confirmed as it was decided.
        None if held && request.confirm && request.corrections.is_empty() => {
            (stored_case(&case)?, Vec::new())
        }
        None => return Err(VerifyError::NoForm),
    };
    let (mail, _) = email_of(&case);

    let decision = checked.decision;
    let to = if request.confirm {
        decision.as_str().to_string()
    } else {
        case.state.clone()
    };
    let json =
        |v: Result<String, serde_json::Error>| v.map_err(|e| VerifyError::Corrupt(e.to_string()));
    let mut verification = Verification {
        case_id: case.id.clone(),
        from: case.state.clone(),
        to: to.clone(),
        decision: request.confirm.then(|| decision.as_str().to_string()),
        actor: request.actor.clone(),
        at: now_ms,
        fields: json(serde_json::to_string(&checked.fields))?,
        reasons: json(serde_json::to_string(&checked.reasons))?,
        warnings: json(serde_json::to_string(&checked.warnings))?,
        verify: if request.confirm || !held {
            "[]".into()
        } else {
            case.verify.clone()
        },
        manager_mail: checked.context.manager_mail.clone(),
        holder_mail: checked.context.holder_mail.clone(),
        corrections: changed.clone(),
        confirmed: None,
        reply: None,
        no_reply: None,
    };
    if request.confirm {
        let waited: Vec<String> = serde_json::from_str::<Vec<Option<String>>>(&case.verify)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.unwrap_or_else(|| "(utan fält)".into()))
            .collect();
        verification.confirmed = Some(format!("Granskat: {}", waited.join(", ")));
        // A held case had no reply yet: this is its first.
        let reply_id = format!("{}-1", case.id);
        let message_id = crate::store::reply_message_id(&reply_id, &case.message_row);
        match mail {
            Some(mail) => {
                match build_reply(
                    &mail,
                    &checked,
                    &case.id,
                    &message_id,
                    &intake.reply_settings(),
                ) {
                    Ok(reply) => verification.reply = Some((reply_id, reply)),
                    Err(ReplyError::NoRecipient) => {
                        verification.no_reply = Some("no address to reply to".into())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => verification.no_reply = Some("no address to reply to".into()),
        }
    }
    let reply = store.apply_verification(&verification).await?;
    // Case number and codes only: the values are personal data.
    tracing::info!(
        case = %case.id,
        from = %case.state,
        to = %to,
        decision = %decision,
        corrected = %changed.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(","),
        reply = reply.is_some(),
        "case verified by staff"
    );
    Ok(Verified {
        from: case.state,
        state: to,
        decision,
        reasons: checked.reasons,
        corrected: changed.into_iter().map(|c| c.0).collect(),
        reply,
    })
}

/// The case checked again with the corrections of `request`, as the intake checks it, and
/// the fields that changed (key, before, after). An open accepted case must stay valid.
async fn recheck_form(
    intake: &Intake,
    case: &CaseRow,
    kind: FormKind,
    request: &VerifyRequest,
) -> Result<(CheckedCase, Vec<(String, Option<String>, Option<String>)>), VerifyError> {
    let corrections = parse_corrections(kind, &request.corrections)?;

    // The form as stored, with the corrections: absent values stay absent.
    let stored = stored_fields(case)?;
    let before = |key: &str| stored.get(key).and_then(Value::as_str).map(str::to_string);
    let mut form = RawForm::new(kind);
    for spec in kind.fields() {
        if let Some(v) = before(spec.key) {
            form.values.insert(spec.key, v);
        }
    }
    let mut changed: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    let mut signature = stored_signature(case);
    for (key, value) in &corrections {
        if *key == SIGNATURE_KEY {
            let now = if value.as_deref() == Some(SIGNED_SV) {
                SignatureState::Signed
            } else {
                SignatureState::Missing
            };
            if now != signature {
                changed.push((key.to_string(), signature_sv(signature), signature_sv(now)));
                signature = now;
            }
            continue;
        }
        let old = before(key);
        if old.as_deref().map(str::trim) == value.as_deref() {
            continue;
        }
        match value {
            Some(v) => form.values.insert(key, v.clone()),
            None => form.values.remove(key),
        };
        changed.retain(|(k, _, _)| k != key);
        changed.push((key.to_string(), old, value.clone()));
    }
    if kind == FormKind::Order {
        form.signature = Some(SignatureReading {
            state: signature,
            place: None,
        });
    }
    if changed.is_empty() && !request.confirm {
        return Err(VerifyError::Nothing);
    }

    // Checked again as the intake checks: the same KIV, register and settings, the email's date
    // and sender, and its authentication as recorded in its headers.
    let (mail, email_date) = email_of(case);
    let authenticated = mail.as_ref().is_some_and(|m| intake.sender_passes(m));
    let checked = intake
        .recheck(
            &form,
            case.attachment.as_deref(),
            email_date,
            case.sender.as_deref(),
            authenticated,
        )
        .await?;
    let mut checked = carry_over(case, checked, &changed)?;
    checked.verify.clear();
    if OPEN_ACCEPTED.contains(&case.state.as_str()) && checked.decision == Decision::Rejected {
        let reasons: Vec<String> = checked
            .reasons
            .iter()
            .map(|r| match r.field.and_then(|f| kind.field(f)) {
                Some(f) => format!("{}: {}", r.code.label_sv(), f.label),
                None => r.code.label_sv().to_string(),
            })
            .collect();
        return Err(VerifyError::WouldReject(reasons.join(", ")));
    }
    Ok((checked, changed))
}

/// A case without a form as it was decided (its reasons), for a confirmation.
fn stored_case(case: &CaseRow) -> Result<CheckedCase, VerifyError> {
    // A case without a form has no field its reasons could name.
    let reasons: Vec<Finding<ReasonCode>> = serde_json::from_str::<Vec<Value>>(&case.reasons)
        .map_err(|e| VerifyError::Corrupt(format!("reasons: {e}")))?
        .iter()
        .filter_map(|r| ReasonCode::parse(r["code"].as_str()?))
        .map(|code| Finding::new(code, None))
        .collect();
    Ok(CheckedCase::new(
        crate::case::CaseKind::Unknown,
        reasons,
        Vec::new(),
        crate::case::Fields::default(),
        CaseContext::default(),
    ))
}

/// The case's email as recorded (its headers), and its date as the intake took it (its
/// `Date`), else the day the case was made.
pub(crate) fn email_of(
    case: &CaseRow,
) -> (
    Option<crate::pipeline::parse::ParsedMail>,
    chrono::NaiveDate,
) {
    let mail = parse_mail(format!("{}\r\n\r\n", case.headers).as_bytes()).ok();
    let created = DateTime::from_timestamp_millis(case.created_at)
        .map(|d| d.date_naive())
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let date = mail.as_ref().map_or(created, |m| m.email_date(created));
    (mail, date)
}

/// What the new check cannot know, taken from the case as it was read: the attachment, its
/// pages and field boxes (the reply names them, the crops need them), and the OCR doubt about
/// fields staff did not change.
fn carry_over(
    case: &CaseRow,
    mut checked: CheckedCase,
    changed: &[(String, Option<String>, Option<String>)],
) -> Result<CheckedCase, VerifyError> {
    let boxes: Vec<FieldBox> = serde_json::from_str(&case.field_boxes).unwrap_or_default();
    let pages: Vec<usize> = serde_json::from_str(&case.pages).unwrap_or_default();
    checked.context = CaseContext {
        attachment: case.attachment.clone(),
        attachment_index: case.attachment_index.and_then(|i| usize::try_from(i).ok()),
        pages,
        field_boxes: boxes,
        ..checked.context
    };
    let old: Vec<Value> = serde_json::from_str(&case.warnings).unwrap_or_default();
    for w in old {
        if w["code"].as_str() != Some(WarningCode::LowOcrConfidence.as_str()) {
            continue;
        }
        let Some(field) = w["field"].as_str().and_then(|f| {
            checked
                .fields
                .0
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(k, _)| *k)
        }) else {
            continue;
        };
        let corrected = changed.iter().any(|(k, _, _)| k == field);
        let finding = Finding::new(WarningCode::LowOcrConfidence, Some(field));
        if !corrected && !checked.warnings.contains(&finding) {
            checked.warnings.push(finding);
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn staff_read_errors_without_the_english_cause() {
        let e = VerifyError::Directory(DirectoryError::NoFixedPoint(6));
        assert!(
            e.to_string().contains("LDAP"),
            "the cause stays in the log text"
        );
        assert_eq!(
            e.message_sv(),
            "KIV kan inte nås just nu; ingenting ändrades. Försök igen om en stund."
        );
        let e = VerifyError::Corrupt("fields".into());
        assert_eq!(
            e.message_sv(),
            "Ärendets lagrade uppgifter är trasiga; ingenting ändrades."
        );
        // The Swedish messages without a cause are shown as they are.
        assert_eq!(
            VerifyError::Nothing.message_sv(),
            VerifyError::Nothing.to_string()
        );
    }

    #[test]
    fn a_wrong_key_names_the_keys_of_the_form() {
        let err = parse_corrections(FormKind::Order, &[("epsot".into(), "x".into())]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("epsot") && text.contains("epost") && text.contains("mobil"),
            "{text}"
        );
        let ok = parse_corrections(FormKind::Order, &[("epost".into(), "  ".into())]).unwrap();
        assert_eq!(ok, vec![("epost", None)]);
    }

    use crate::case::{CaseKind, ReasonCode};
    use crate::store::{MailRecord, Recorded};

    /// The email the cases come from (a plain body; the form is given to `recheck` directly).
    const MAIL: &str = "From: =?utf-8?Q?=C3=96rjan_Lindqvist?= <orjan.lindqvist@vgregion.se>\r
To: =?utf-8?Q?Tj=C3=A4nsteID-service?= <tjansteid@vgregion.se>\r
Subject: =?utf-8?Q?Best=C3=A4llning_eTj=C3=A4nstekort?=\r
Message-ID: <held-1@test.tjid>\r
Date: Wed, 18 Nov 2026 10:00:00 +0100\r
MIME-Version: 1.0\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: 8bit\r
\r
Hej!\r
\r
Se bifogad blankett.\r
";

    /// A valid order, one value per field (the test kit's example values, which the crate's
    /// own tests cannot use).
    const ORDER: [&str; 17] = [
        "Västra Götalandsregionen",
        "232100-0131",
        "Vårdcentralen Ekmansgatan",
        "SE2321000131-E000000000101",
        "Anna-Karin",
        "Åström",
        "19121212-1212",
        "anna-karin.astrom@vgregion.se",
        "070-123 45 67",
        "Sjuksköterska",
        "Nytt",
        "Utlamningsstalle",
        "Receptionen, Vårdcentralen Ekmansgatan",
        "Örjan Lindqvist",
        "orjan.lindqvist@vgregion.se",
        "031-345 67 00",
        "2026-11-18",
    ];

    struct World {
        _dir: tempfile::TempDir,
        store: Store,
        intake: Intake,
        mail: crate::pipeline::parse::ParsedMail,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // The intake as `[intake] require_authenticated_sender = false` and the fixtures' KIV
        // and register configure it.
        let parts = crate::pipeline::IntakeParts {
            intake: crate::pipeline::IntakeSettings {
                require_authenticated_sender: false,
                ..Default::default()
            },
            limits: Default::default(),
            directory: Default::default(),
            kiv: crate::directory::KivSettings {
                ldif: root.join("fixtures/kiv.ldif"),
            },
            ldap: Default::default(),
            providers: crate::providers::ProviderSettings {
                csv: root.join("fixtures/providers.csv"),
            },
            ocr: Default::default(),
            ocr_workers: 0,
            child_memory_mb: 0,
            originals: crate::originals::Originals::at(dir.path().join("maildir"), None),
        };
        let store = Store::open_sqlite(&dir.path().join("intake.db"))
            .await
            .unwrap();
        let intake = Intake::load(parts).unwrap();
        let mail = parse_mail(MAIL.as_bytes()).unwrap();
        World {
            _dir: dir,
            store,
            intake,
            mail,
        }
    }

    impl World {
        /// The example order, with `change` applied, checked as a digital form.
        async fn order(&self, change: impl FnOnce(&mut RawForm)) -> CheckedCase {
            let kind = FormKind::Order;
            let mut form = RawForm::new(kind);
            assert_eq!(kind.fields().len(), ORDER.len());
            for (f, v) in kind.fields().iter().zip(ORDER) {
                form.values.insert(f.key, v.to_string());
            }
            change(&mut form);
            self.intake
                .recheck(
                    &form,
                    Some("scan.pdf"),
                    NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
                    self.mail.from.as_deref(),
                    true,
                )
                .await
                .unwrap()
        }

        async fn record(&self, source: &str, case: &CheckedCase) -> String {
            let record = MailRecord {
                source_ref: source.into(),
                message_id: Some(format!("<{source}@test>")),
                content_hash: "0".repeat(64),
                received_at: 1_763_456_400_000,
                email_date: self.mail.date.map(|d| d.to_rfc3339()),
                sender: self.mail.from.clone(),
                subject: self.mail.subject.clone(),
                headers: self.mail.raw_headers.clone(),
                ignored: None,
                error: None,
                bounce: None,
            };
            let mail = self.mail.clone();
            let settings = self.intake.reply_settings();
            let render = move |c: &CheckedCase, id: &str, mid: &str| {
                build_reply(&mail, c, id, mid, &settings).ok()
            };
            match self
                .store
                .record(
                    &record,
                    std::slice::from_ref(case),
                    &render,
                    1_763_456_400_000,
                )
                .await
                .unwrap()
            {
                Recorded::Processed { case_ids, .. } => case_ids[0].clone(),
                other => panic!("{other:?}"),
            }
        }
    }

    fn smudge(form: &mut RawForm) {
        let v = form.values.get("epost").unwrap().replace('@', "G");
        form.values.insert("epost", v);
    }

    #[tokio::test]
    async fn a_held_case_gets_no_reply_until_staff_confirm_it() {
        let w = world().await;
        assert_eq!(w.order(|_| {}).await.decision, Decision::Queued);
        let mut case = w.order(smudge).await;
        assert_eq!(case.kind, CaseKind::Order);
        assert_eq!(
            case.reasons,
            vec![Finding::new(ReasonCode::InvalidField, Some("epost"))]
        );
        case.verify = vec![Some("epost")];
        case.context.field_boxes = vec![FieldBox {
            field: "epost".into(),
            page: 1,
            left: 0.1,
            top: 0.4,
            right: 0.7,
            bottom: 0.43,
        }];
        let id = w.record("held-1", &case).await;
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!(
            (d.case.state.as_str(), d.case.decision.as_str()),
            ("held", "rejected")
        );
        assert!(d.replies.is_empty(), "a held case is not answered");
        assert_eq!(d.case.verify, r#"["epost"]"#);
        assert!(d.case.field_boxes.contains("\"field\":\"epost\""));
        assert!(d
            .audit
            .iter()
            .any(|a| a.action == "held" && a.comment.as_deref() == Some("epost")));
        assert_eq!(w.store.queue_counts().await.unwrap().held, 1);
        let smudged = serde_json::from_str::<Value>(&d.case.fields).unwrap()["epost"]
            .as_str()
            .unwrap()
            .to_string();
        let right = smudged.replace('G', "@");

        // A wrong key names the form's keys and changes nothing.
        let wrong = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("e-post".into(), right.clone())],
            confirm: true,
        };
        assert!(matches!(
            verify(&w.store, &w.intake, 2, wrong).await,
            Err(VerifyError::UnknownField { .. })
        ));

        let request = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("epost".into(), right.clone())],
            confirm: true,
        };
        let done = verify(&w.store, &w.intake, 1_763_456_500_000, request.clone())
            .await
            .unwrap();
        assert_eq!(
            (done.from.as_str(), done.state.as_str()),
            ("held", "queued")
        );
        assert_eq!(done.decision, Decision::Queued);
        assert_eq!(done.corrected, vec!["epost".to_string()]);
        assert_eq!(done.reply.as_deref(), Some(format!("{id}-1").as_str()));
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!(
            (d.case.state.as_str(), d.case.decision.as_str()),
            ("queued", "queued")
        );
        assert_eq!(d.case.verify, "[]");
        assert_eq!(d.case.reasons, "[]");
        assert_eq!(d.replies.len(), 1);
        let reply = &d.replies[0];
        assert_eq!(reply.recipient, "orjan.lindqvist@vgregion.se");
        assert!(
            reply.raw.contains("In-Reply-To: <held-1@test.tjid>"),
            "{}",
            reply.raw
        );
        assert!(reply.subject.starts_with("Re: Beställning"));
        let fix = d
            .audit
            .iter()
            .find(|a| a.action == "field_corrected")
            .unwrap();
        assert_eq!(
            (
                fix.actor.as_str(),
                fix.before.as_deref(),
                fix.after.as_deref(),
                fix.comment.as_deref()
            ),
            (
                "anna",
                Some(smudged.as_str()),
                Some(right.as_str()),
                Some("epost")
            )
        );
        let confirmed = d.audit.iter().find(|a| a.action == "verified").unwrap();
        assert_eq!(
            (confirmed.before.as_deref(), confirmed.after.as_deref()),
            (Some("held"), Some("queued"))
        );
        assert_eq!(w.store.queue_counts().await.unwrap().held, 0);

        // Again: the case moved on (it is answered; its fields may still be corrected).
        assert!(matches!(
            verify(&w.store, &w.intake, 3, request).await,
            Err(VerifyError::AlreadyAnswered)
        ));
        // And the store refuses a write whose starting state moved.
        let stale = Verification {
            case_id: id.clone(),
            from: "held".into(),
            to: "queued".into(),
            decision: None,
            actor: "x".into(),
            at: 4,
            fields: "{}".into(),
            reasons: "[]".into(),
            warnings: "[]".into(),
            verify: "[]".into(),
            manager_mail: None,
            holder_mail: None,
            corrections: Vec::new(),
            confirmed: None,
            reply: None,
            no_reply: None,
        };
        assert!(matches!(
            w.store.apply_verification(&stale).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            w.store
                .case_detail(&id)
                .await
                .unwrap()
                .unwrap()
                .replies
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_held_case_without_a_form_is_confirmed_and_answered() {
        let w = world().await;
        let mut case = CheckedCase::new(
            crate::case::CaseKind::Unknown,
            vec![Finding::new(ReasonCode::NoFormFound, None)],
            Vec::new(),
            crate::case::Fields::default(),
            CaseContext::default(),
        );
        case.verify = vec![None];
        let id = w.record("noform-1", &case).await;
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!((d.case.state.as_str(), d.replies.len()), ("held", 0));
        // Nothing to correct in a case without a form.
        let correct = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("befattning".into(), "x".into())],
            confirm: true,
        };
        assert!(matches!(
            verify(&w.store, &w.intake, 5, correct).await,
            Err(VerifyError::NoForm)
        ));
        let confirm = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: Vec::new(),
            confirm: true,
        };
        let done = verify(&w.store, &w.intake, 6, confirm).await.unwrap();
        assert_eq!(done.state, "rejected");
        assert!(done.reply.is_some());
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!((d.case.state.as_str(), d.replies.len()), ("rejected", 1));
        assert!(d.replies[0].raw.contains("TJID-"), "{}", d.replies[0].raw);
    }

    #[tokio::test]
    async fn a_queued_case_is_corrected_while_it_stays_valid() {
        let w = world().await;
        let case = w.order(|_| {}).await;
        let id = w.record("queued-1", &case).await;
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!((d.case.state.as_str(), d.replies.len()), ("queued", 1));
        let request = |field: &str, value: &str| VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![(field.into(), value.into())],
            confirm: false,
        };
        // A misread job title, corrected: still queued, audited, no new reply.
        let done = verify(&w.store, &w.intake, 5, request("befattning", "Barnmorska"))
            .await
            .unwrap();
        assert_eq!(
            (done.from.as_str(), done.state.as_str()),
            ("queued", "queued")
        );
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        let fields: Value = serde_json::from_str(&d.case.fields).unwrap();
        assert_eq!(fields["befattning"], "Barnmorska");
        assert_eq!(d.replies.len(), 1, "no new reply");
        assert!(d
            .audit
            .iter()
            .any(|a| a.action == "field_corrected" && a.comment.as_deref() == Some("befattning")));
        // A correction that would reject it is refused, with the reason, and changes nothing.
        let err = verify(
            &w.store,
            &w.intake,
            6,
            request("personnummer", "19121212-1213"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, VerifyError::WouldReject(_)), "{err}");
        assert!(
            err.message_sv().contains("Personnummer"),
            "{}",
            err.message_sv()
        );
        let after = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!(after.case.fields, d.case.fields);
        assert_eq!(after.case.state, "queued");
    }

    #[tokio::test]
    async fn a_rejected_case_is_corrected_without_a_new_reply() {
        let w = world().await;
        let case = w
            .order(|f| {
                f.values.remove("mobil");
            })
            .await;
        assert!(!case.held());
        let id = w.record("rejected-1", &case).await;
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!((d.case.state.as_str(), d.replies.len()), ("rejected", 1));

        // Confirming is for held cases only.
        let confirm = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("mobil".into(), "070-123 45 67".into())],
            confirm: true,
        };
        assert!(matches!(
            verify(&w.store, &w.intake, 5, confirm).await,
            Err(VerifyError::AlreadyAnswered)
        ));
        let correct = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("mobil".into(), "070-123 45 67".into())],
            confirm: false,
        };
        let done = verify(&w.store, &w.intake, 6, correct).await.unwrap();
        assert_eq!(
            (done.from.as_str(), done.state.as_str()),
            ("rejected", "rejected")
        );
        assert_eq!(done.decision, Decision::Queued);
        assert!(done.reply.is_none());
        let d = w.store.case_detail(&id).await.unwrap().unwrap();
        assert_eq!(
            (d.case.state.as_str(), d.case.decision.as_str()),
            ("rejected", "rejected")
        );
        assert_eq!(d.replies.len(), 1, "no new reply");
        assert_eq!(d.case.reasons, "[]");
        let fields: Value = serde_json::from_str(&d.case.fields).unwrap();
        assert!(fields["mobil"].as_str().is_some());
        let fix = d
            .audit
            .iter()
            .find(|a| a.action == "field_corrected")
            .unwrap();
        assert_eq!(
            (fix.before.as_deref(), fix.comment.as_deref()),
            (None, Some("mobil"))
        );
        // Nothing changed, nothing confirmed: refused.
        let nothing = VerifyRequest {
            case_id: id.clone(),
            actor: "anna".into(),
            corrections: vec![("mobil".into(), fields["mobil"].as_str().unwrap().into())],
            confirm: false,
        };
        assert!(matches!(
            verify(&w.store, &w.intake, 7, nothing).await,
            Err(VerifyError::Nothing)
        ));
    }
}
