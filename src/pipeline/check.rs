//! Stage 3: one form's raw values → normalised fields, reasons and warnings (SPEC §2.4, §3,
//! §4.2, §4.3). Every problem that can be checked is reported; a directory check runs only on
//! values that are present and valid.

use chrono::NaiveDate;

use crate::case::{CaseContext, CheckedCase, Fields, Finding, ReasonCode as R, WarningCode as W};
use crate::directory::{KivLookup, Person, Unit};
use crate::domain::{
    collapse_ws, format_iso, parse_form_date, within_date_window, CardNumber, Email, HsaId, Mobile,
    Personnummer, ProviderId,
};
use crate::forms::spec::{FieldSpec, FieldType, FormKind, Requirement, NO, YES};
use crate::pipeline::layout::RawForm;
use crate::providers::ProviderRegister;

/// What checks need to know about the email and the world.
pub struct CheckContext<'a> {
    pub kiv: &'a dyn KivLookup,
    pub providers: &'a ProviderRegister,
    pub email_date: NaiveDate,
    /// The `From` address.
    pub sender: Option<&'a str>,
    /// `Some(false)` when authentication is required and did not pass.
    pub sender_authenticated: bool,
}

/// Valid, parsed values that the directory checks use.
#[derive(Default)]
struct Parsed {
    pnr: Option<Personnummer>,
    provider: Option<ProviderId>,
    unit: Option<HsaId>,
}

pub fn check_form(form: &RawForm, attachment: Option<&str>, ctx: &CheckContext<'_>) -> CheckedCase {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    let mut parsed = Parsed::default();
    let mut fields = Vec::new();
    // Fields read by OCR whose text broke its rule (see below).
    let mut ocr_doubtful: Vec<&'static str> = Vec::new();

    let choice = |key: &str| form.values.get(key).map(String::as_str).unwrap_or("");
    for spec in form.kind.fields() {
        let raw = form
            .values
            .get(spec.key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let required = match spec.requirement {
            Requirement::Required => true,
            Requirement::Optional => false,
            Requirement::RequiredWhen { field, export } => choice(field) == export,
        };
        let value = match (spec.field_type, raw) {
            (FieldType::YesNo, None) if form.values.contains_key(spec.key) => {
                // The label is there but nothing is marked: an unmarked box.
                reasons.push(Finding::new(R::CutCardNotConfirmed, Some(spec.key)));
                Some(NO.to_string())
            }
            (_, None) => {
                if required {
                    reasons.push(Finding::new(R::MissingField, Some(spec.key)));
                }
                None
            }
            (FieldType::Choice(_), Some(raw)) => {
                if raw.contains(',') {
                    reasons.push(Finding::new(R::InvalidField, Some(spec.key)));
                    None
                } else {
                    Some(raw.to_string())
                }
            }
            (FieldType::YesNo, Some(raw)) => {
                if raw != YES {
                    reasons.push(Finding::new(R::CutCardNotConfirmed, Some(spec.key)));
                }
                Some(if raw == YES { YES } else { NO }.to_string())
            }
            (FieldType::Text, Some(raw)) => {
                // A value read by OCR that breaks its rule may be an OCR confusion: the repaired
                // candidate is taken only when it passes the rule (and checksum) in full.
                let repaired = if form.from_ocr() && !passes_rule(spec.key, raw, ctx) {
                    // The text as read broke its own rule: whether repaired or not, it was not
                    // read with confidence, and staff are told so.
                    if !form.low_confidence.contains(&spec.key) {
                        ocr_doubtful.push(spec.key);
                    }
                    ocr_candidate(spec.key, raw).filter(|c| passes_rule(spec.key, c, ctx))
                } else {
                    None
                };
                let raw = repaired.as_deref().unwrap_or(raw);
                Some(check_text(
                    spec,
                    raw,
                    ctx,
                    &mut parsed,
                    &mut reasons,
                    &mut warnings,
                ))
            }
        };
        fields.push((spec.key, value));
    }
    for key in form.low_confidence.iter().chain(&ocr_doubtful) {
        warnings.push(Finding::new(W::LowOcrConfidence, Some(*key)));
    }

    let fields = Fields(fields);
    let mut context = CaseContext {
        attachment: attachment.map(str::to_string),
        pages: form.pages.clone(),
        personnummer_masked: parsed.pnr.as_ref().map(Personnummer::masked),
        ..CaseContext::default()
    };
    match form.kind {
        FormKind::Order => check_order_directory(
            &fields,
            &parsed,
            ctx,
            &mut reasons,
            &mut warnings,
            &mut context,
        ),
        FormKind::Deregistration => {
            check_deregistration_directory(&fields, &parsed, ctx, &mut warnings, &mut context)
        }
    }
    if !ctx.sender_authenticated {
        reasons.push(Finding::new(R::UnauthenticatedSender, None));
    }
    CheckedCase::new(form.kind.into(), reasons, warnings, fields, context)
}

/// Validates and normalises one text value; returns the value to show (normalised when it
/// parses, as read when it does not).
fn check_text(
    spec: &FieldSpec,
    raw: &str,
    ctx: &CheckContext<'_>,
    parsed: &mut Parsed,
    reasons: &mut Vec<Finding<R>>,
    warnings: &mut Vec<Finding<W>>,
) -> String {
    let as_read = collapse_ws(raw);
    let mut invalid = || reasons.push(Finding::new(R::InvalidField, Some(spec.key)));
    match spec.key {
        "personnummer" => match Personnummer::parse(raw, ctx.email_date) {
            Ok(p) => {
                let v = p.normalized();
                parsed.pnr = Some(p);
                v
            }
            Err(_) => {
                invalid();
                as_read
            }
        },
        "vardgivare_orgnr" => match ProviderId::parse(raw, ctx.email_date) {
            Ok(p) => {
                let v = p.normalized();
                parsed.provider = Some(p);
                v
            }
            Err(_) => {
                invalid();
                as_read
            }
        },
        "vardenhet_hsaid" => match HsaId::parse(raw) {
            Ok(h) => {
                let v = h.as_str().to_string();
                parsed.unit = Some(h);
                v
            }
            Err(_) => {
                invalid();
                as_read
            }
        },
        "epost" | "vc_epost" => match Email::parse(raw) {
            Ok(e) => e.as_str().to_string(),
            Err(_) => {
                invalid();
                as_read
            }
        },
        "mobil" => match Mobile::parse(raw) {
            Ok(m) => m.as_str().to_string(),
            Err(_) => {
                invalid();
                as_read
            }
        },
        "kortnummer" => match CardNumber::parse(raw) {
            Ok(c) => {
                if !c.checksum_ok() {
                    warnings.push(Finding::new(W::CardNumberChecksum, Some(spec.key)));
                }
                c.normalized()
            }
            Err(_) => {
                invalid();
                as_read
            }
        },
        "datum" => match parse_form_date(raw) {
            Ok(d) => {
                if !within_date_window(d, ctx.email_date) {
                    invalid();
                }
                format_iso(d)
            }
            Err(_) => {
                invalid();
                as_read
            }
        },
        _ => as_read,
    }
}

/// Whether `value` passes the format rule of field `key` (SPEC §2.4), its checksum included.
fn passes_rule(key: &str, value: &str, ctx: &CheckContext<'_>) -> bool {
    match key {
        "personnummer" => Personnummer::parse(value, ctx.email_date).is_ok(),
        "vardgivare_orgnr" => ProviderId::parse(value, ctx.email_date).is_ok(),
        "vardenhet_hsaid" => HsaId::parse(value).is_ok(),
        "kortnummer" => CardNumber::parse(value).is_ok_and(|c| c.checksum_ok()),
        "mobil" => Mobile::parse(value).is_ok(),
        "datum" => parse_form_date(value).is_ok_and(|d| within_date_window(d, ctx.email_date)),
        "epost" | "vc_epost" => Email::parse(value).is_ok(),
        _ => true,
    }
}

/// The usual OCR confusions undone in a field that is numeric by rule (O→0, l/I→1, S→5, B→8,
/// Z→2; in an HSA-id only in its ten digits, and without the spaces OCR inserts), and in an
/// e-mail address the `@` that OCR reads
/// as `Q`, `©` or `®` and the spaces it inserts. `None` when nothing would change.
pub fn ocr_candidate(key: &str, raw: &str) -> Option<String> {
    fn digit(c: char) -> char {
        match c {
            'O' | 'o' | 'D' => '0',
            'l' | 'I' | '|' | 'i' => '1',
            'S' | 's' => '5',
            'B' => '8',
            'Z' | 'z' => '2',
            c => c,
        }
    }
    let out: String = match key {
        "personnummer" | "vardgivare_orgnr" | "kortnummer" | "mobil" | "datum" => {
            raw.chars().map(digit).collect()
        }
        "vardenhet_hsaid" => {
            // An HSA-id has no spaces; OCR puts them in after a hyphen.
            let mut chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
            if chars.len() > 12 {
                for c in &mut chars[2..12] {
                    *c = digit(*c);
                }
            }
            chars.into_iter().collect()
        }
        "epost" | "vc_epost" => {
            let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.contains('@') {
                compact
            } else {
                // Exactly one look-alike of `@`, else we would be guessing.
                let looks: Vec<usize> = compact
                    .char_indices()
                    .filter(|(_, c)| matches!(c, 'Q' | '©' | '®'))
                    .map(|(i, _)| i)
                    .collect();
                let [i] = looks.as_slice() else { return None };
                let mut s = compact.clone();
                s.replace_range(
                    *i..*i
                        + compact[*i..]
                            .chars()
                            .next()
                            .map(char::len_utf8)
                            .unwrap_or(1),
                    "@",
                );
                s
            }
        }
        _ => return None,
    };
    (out != raw).then_some(out)
}

fn check_order_directory(
    fields: &Fields,
    parsed: &Parsed,
    ctx: &CheckContext<'_>,
    reasons: &mut Vec<Finding<R>>,
    warnings: &mut Vec<Finding<W>>,
    context: &mut CaseContext,
) {
    let person = parsed
        .pnr
        .as_ref()
        .map(|p| (p, ctx.kiv.person_by_pnr(&p.digits12())));
    if let Some((_, found)) = person {
        match found {
            None => reasons.push(Finding::new(R::PersonNotInKiv, Some("personnummer"))),
            Some(person) => {
                if let Some(first) = fields.get("fornamn") {
                    if !first_name_matches(first, &person.given_name) {
                        warnings.push(Finding::new(W::NameMismatch, Some("fornamn")));
                    }
                }
                if let Some(last) = fields.get("efternamn") {
                    if fold_name(last) != fold_name(&person.surname) {
                        warnings.push(Finding::new(W::NameMismatch, Some("efternamn")));
                    }
                }
            }
        }
    }
    if let Some(hsa) = &parsed.unit {
        match ctx.kiv.unit_by_hsa_id(hsa.as_str()) {
            None => reasons.push(Finding::new(R::UnitNotInKiv, Some("vardenhet_hsaid"))),
            Some(unit) => {
                if let Some((_, Some(person))) = person {
                    if !person.is_at_unit(&unit.hsa_id) {
                        reasons.push(Finding::new(R::PersonNotAtUnit, Some("personnummer")));
                    }
                }
                context.manager_mail = manager_of(ctx, unit).and_then(|m| m.mail.clone());
                if !sender_is_manager(ctx, unit) {
                    reasons.push(Finding::new(R::SenderNotManager, None));
                }
            }
        }
    }
    if let Some(provider) = &parsed.provider {
        if !ctx
            .providers
            .is_connected(&provider.register_key(), ctx.email_date)
        {
            reasons.push(Finding::new(
                R::ProviderNotConnected,
                Some("vardgivare_orgnr"),
            ));
        }
    }
}

fn check_deregistration_directory(
    fields: &Fields,
    parsed: &Parsed,
    ctx: &CheckContext<'_>,
    warnings: &mut Vec<Finding<W>>,
    context: &mut CaseContext,
) {
    // The unit by its HSA-id when one is given (and valid), else by its name.
    let hsa_given = fields.get("vardenhet_hsaid").is_some();
    let unit = match (&parsed.unit, hsa_given) {
        (Some(hsa), _) => Some(ctx.kiv.unit_by_hsa_id(hsa.as_str())),
        (None, false) => fields
            .get("vardenhet_namn")
            .map(|n| ctx.kiv.unit_by_name(n)),
        (None, true) => None,
    };
    let person = parsed
        .pnr
        .as_ref()
        .map(|p| ctx.kiv.person_by_pnr(&p.digits12()));
    match person {
        Some(None) => warnings.push(Finding::new(W::KivEmploymentMissing, None)),
        Some(Some(person)) => {
            context.holder_mail = person.mail.clone();
            if let Some(Some(unit)) = unit {
                if !person.is_at_unit(&unit.hsa_id) {
                    warnings.push(Finding::new(W::KivEmploymentMissing, None));
                }
            }
            if let Some(name) = fields.get("namn") {
                if !full_name_matches(name, person) {
                    warnings.push(Finding::new(W::NameMismatch, Some("namn")));
                }
            }
        }
        None => {}
    }
    match unit {
        Some(None) => warnings.push(Finding::new(W::UnitNotInKiv, None)),
        Some(Some(unit)) => {
            context.manager_mail = manager_of(ctx, unit).and_then(|m| m.mail.clone());
            if !sender_is_manager(ctx, unit) {
                warnings.push(Finding::new(W::SenderNotManager, None));
            }
        }
        None => {}
    }
}

fn manager_of<'k>(ctx: &CheckContext<'k>, unit: &Unit) -> Option<&'k Person> {
    unit.manager_hsa_id
        .as_deref()
        .and_then(|id| ctx.kiv.person_by_hsa_id(id))
}

fn sender_is_manager(ctx: &CheckContext<'_>, unit: &Unit) -> bool {
    let manager_mail = manager_of(ctx, unit).and_then(|m| m.mail.as_deref());
    match (ctx.sender, manager_mail) {
        (Some(sender), Some(mail)) => sender.trim().eq_ignore_ascii_case(mail.trim()),
        _ => false,
    }
}

fn fold_name(s: &str) -> String {
    collapse_ws(s).to_lowercase()
}

/// The form's first name is KIV's `givenName`, or one of its space- or hyphen-separated parts.
fn first_name_matches(form: &str, given: &str) -> bool {
    let form = fold_name(form);
    let given = fold_name(given);
    form == given || given.split([' ', '-']).any(|part| part == form)
}

/// A deregistration's `namn` against `givenName sn`, the same way.
fn full_name_matches(form: &str, person: &Person) -> bool {
    let form = fold_name(form);
    let surname = fold_name(&person.surname);
    let Some(first) = form.strip_suffix(&surname).map(str::trim_end) else {
        return false;
    };
    !first.is_empty() && first_name_matches(first, &person.given_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocr_confusions_give_a_candidate() {
        assert_eq!(
            ocr_candidate("personnummer", "l9l2l2l2-l2l2").as_deref(),
            Some("19121212-1212")
        );
        assert_eq!(ocr_candidate("personnummer", "19121212-1212"), None);
        assert_eq!(
            ocr_candidate("vardenhet_hsaid", "SE232lOOO131-EOOO").as_deref(),
            Some("SE2321000131-EOOO")
        );
        assert_eq!(
            ocr_candidate("epost", "anna.astromQvgregion.se").as_deref(),
            Some("anna.astrom@vgregion.se")
        );
        assert_eq!(
            ocr_candidate("epost", "orjan. lindqvist@vgregion.se").as_deref(),
            Some("orjan.lindqvist@vgregion.se")
        );
        assert_eq!(ocr_candidate("epost", "QQvgregion.se"), None);
        assert_eq!(ocr_candidate("fornamn", "Anna"), None);
    }

    #[test]
    fn first_names_may_be_one_part() {
        assert!(first_name_matches("Anna", "Anna-Karin"));
        assert!(first_name_matches("anna-karin", "Anna-Karin"));
        assert!(first_name_matches("Karin", "Anna Karin"));
        assert!(!first_name_matches("Ann", "Anna-Karin"));
    }
}
