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
use crate::forms::layout::RawForm;
use crate::forms::signature::SignatureState;
use crate::forms::spec::{FieldSpec, FieldType, FormKind, Requirement, NO, SIGNATURE_KEY, YES};
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
    // A scan's values after the repairs SPEC §2.1 allows, and the fields whose text as read
    // broke its rule: whether repaired or not, they were not read with confidence.
    let reading = if form.from_ocr() {
        repair_ocr(form, ctx)
    } else {
        OcrReading {
            values: form.values.clone(),
            doubtful: Vec::new(),
        }
    };
    let ocr_doubtful: Vec<&'static str> = reading
        .doubtful
        .iter()
        .copied()
        .filter(|k| !form.low_confidence.contains(k))
        .collect();

    let choice = |key: &str| reading.values.get(key).map(String::as_str).unwrap_or("");
    for spec in form.kind.fields() {
        let raw = reading
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
            (FieldType::YesNo, None) if reading.values.contains_key(spec.key) => {
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
            (FieldType::Text, Some(raw)) => Some(check_text(
                spec,
                raw,
                ctx,
                &mut parsed,
                &mut reasons,
                &mut warnings,
            )),
        };
        fields.push((spec.key, value));
    }
    if form.kind == FormKind::Order {
        match form.signature.as_ref().map(|s| s.state) {
            Some(SignatureState::Signed) => {}
            Some(SignatureState::Missing) => {
                reasons.push(Finding::new(R::SignatureMissing, Some(SIGNATURE_KEY)))
            }
            Some(SignatureState::NotChecked) | None => {
                warnings.push(Finding::new(W::SignatureNotChecked, None))
            }
        }
    }
    for key in form.low_confidence.iter().chain(&ocr_doubtful) {
        warnings.push(Finding::new(W::LowOcrConfidence, Some(*key)));
    }
    let fields = Fields(fields);
    let mut context = CaseContext {
        attachment: attachment.map(str::to_string),
        pages: form.pages.clone(),
        personnummer_masked: parsed.pnr.as_ref().map(Personnummer::masked),
        field_boxes: if form.from_ocr() {
            form.boxes.clone()
        } else {
            Vec::new()
        },
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
    let uncertain = |key: &str| form.low_confidence.contains(&key) || ocr_doubtful.contains(&key);
    let verify = held_for(&reasons, form.from_ocr(), form.kind, uncertain);
    let mut case = CheckedCase::new(form.kind.into(), reasons, warnings, fields, context);
    case.verify = verify;
    case
}

/// SPEC §4.4 (amended): every rejection of a form read by OCR is held, whatever the confidence.
/// The list names the fields its reasons rest on (`None` for a reason on no field) and then
/// every field read with low confidence. A reason rests on its own field and on the fields its
/// check read: the unit's HSA-id for the employment and sender checks, the choice of pick-up
/// for the pick-up place. A queued case (no reasons) and a digital form are never held.
fn held_for(
    reasons: &[Finding<R>],
    from_ocr: bool,
    kind: FormKind,
    uncertain: impl Fn(&str) -> bool,
) -> Vec<Option<&'static str>> {
    let mut verify: Vec<Option<&'static str>> = Vec::new();
    if !from_ocr || reasons.is_empty() {
        return verify;
    }
    let mut add = |entry: Option<&'static str>| {
        if !verify.contains(&entry) {
            verify.push(entry);
        }
    };
    for reason in reasons {
        let also: &[&'static str] = match (reason.code, reason.field) {
            (R::PersonNotAtUnit, _) | (R::SenderNotManager, _) => &["vardenhet_hsaid"],
            (R::MissingField, Some("utlamningsstalle")) => &["utlamning"],
            _ => &[],
        };
        match reason.field {
            None if also.is_empty() => add(None),
            field => field.iter().chain(also).for_each(|key| add(Some(*key))),
        }
    }
    for spec in kind.fields() {
        if uncertain(spec.key) {
            add(Some(spec.key));
        }
    }
    verify
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

/// A scan's field values after the repairs of SPEC §2.1.
struct OcrReading {
    values: std::collections::BTreeMap<&'static str, String>,
    /// Fields whose text as read broke its rule (repaired or not), or that name a unit only
    /// one or two characters away from the person's own: not read with confidence.
    doubtful: Vec<&'static str>,
}

/// Speckle that OCR reads as punctuation at either end of a value (`Åström.`, `‘Anna`).
fn strip_speckle(raw: &str) -> &str {
    const SPECKLE: &[char] = &[
        '.', ',', ';', ':', '\'', '`', '‘', '’', '|', '_', '~', '"', '^',
    ];
    raw.trim().trim_matches(SPECKLE).trim()
}

/// Character-class aware reading of a field whose grammar is strict: of the words read in its
/// box (leader dots and speckle read as words around it), the one run of words that passes the
/// rule. `None` unless exactly one does. Not for addresses: a part of a mangled address is
/// often a valid address, and only KIV may repair one.
fn grammar_token(key: &str, raw: &str, ctx: &CheckContext<'_>) -> Option<String> {
    if !matches!(
        key,
        "personnummer" | "vardgivare_orgnr" | "kortnummer" | "vardenhet_hsaid" | "mobil" | "datum"
    ) {
        return None;
    }
    let words: Vec<&str> = raw.split_whitespace().collect();
    // First the runs that pass as read, then those that pass after the usual confusions.
    for repaired in [false, true] {
        let mut found: Vec<String> = Vec::new();
        for start in 0..words.len() {
            for end in start + 1..=words.len().min(start + 5) {
                let run = strip_speckle(&words[start..end].join(" ")).to_string();
                let candidate = if repaired {
                    ocr_candidate(key, &run).filter(|c| passes_rule(key, c, ctx))
                } else {
                    Some(run).filter(|r| passes_rule(key, r, ctx))
                };
                if let Some(c) = candidate.filter(|c| !found.contains(c)) {
                    found.push(c);
                }
            }
        }
        // The longest reading wins over its own parts (`9752 2679 …` and `2679 …`).
        found.sort_by_key(|c| std::cmp::Reverse(c.len()));
        match found.as_slice() {
            [] => continue,
            [first, rest @ ..] if rest.iter().all(|r| first.contains(r.as_str())) => {
                return Some(first.clone())
            }
            _ => return None,
        }
    }
    None
}

/// SPEC §2.1, repairs from known values: a value read by OCR that breaks its format is repaired
/// only where exactly one repair makes it valid and agrees with what is already known — the
/// usual character confusions under a checksum or a grammar, an address that equals the KIV
/// `mail` of the person or the verksamhetschef found by other, valid fields, an HSA-id one or
/// two characters from exactly one unit of the provider where the person works.
fn repair_ocr(form: &RawForm, ctx: &CheckContext<'_>) -> OcrReading {
    let mut values = form.values.clone();
    let mut doubtful = Vec::new();
    for spec in form.kind.fields() {
        if !matches!(spec.field_type, FieldType::Text) {
            continue;
        }
        let Some(raw) = values.get(spec.key) else {
            continue;
        };
        let cleaned = strip_speckle(raw).to_string();
        if cleaned.is_empty() || passes_rule(spec.key, &cleaned, ctx) {
            values.insert(spec.key, cleaned);
            continue;
        }
        doubtful.push(spec.key);
        let fixed = ocr_candidate(spec.key, &cleaned)
            .filter(|c| passes_rule(spec.key, c, ctx))
            .or_else(|| grammar_token(spec.key, &cleaned, ctx));
        values.insert(spec.key, fixed.unwrap_or(cleaned));
    }
    let valid = |values: &std::collections::BTreeMap<&'static str, String>, key: &str| {
        values
            .get(key)
            .filter(|v| passes_rule(key, v, ctx))
            .cloned()
    };
    // The provider's organisation number, misread, from the unit found by its valid HSA-id:
    // the HSA-id carries its issuer's number, and KIV the provider's.
    if let Some(raw) = values.get("vardgivare_orgnr").cloned() {
        if !passes_rule("vardgivare_orgnr", &raw, ctx) {
            let unit = valid(&values, "vardenhet_hsaid").and_then(|h| ctx.kiv.unit_by_hsa_id(&h));
            let issuer = unit.map(|u| issuer_of(&u.hsa_id));
            let read: String = raw
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            if let Some(issuer) =
                issuer.filter(|i| i.len() == 10 && i.chars().all(|c| c.is_ascii_digit()))
            {
                let near = strsim::levenshtein(&read, &issuer) <= 2
                    || strsim::levenshtein(&read, &format!("16{issuer}")) <= 2;
                let candidate = format!("{}-{}", &issuer[..6], &issuer[6..]);
                if near && passes_rule("vardgivare_orgnr", &candidate, ctx) {
                    values.insert("vardgivare_orgnr", candidate);
                }
            }
        }
    }
    let person = valid(&values, "personnummer")
        .and_then(|p| Personnummer::parse(&p, ctx.email_date).ok())
        .and_then(|p| ctx.kiv.person_by_pnr(&p.digits12()));
    // The unit: an HSA-id that breaks its grammar, or that names no unit, may be one of the
    // person's own units of this provider misread.
    if let (Some(raw), Some(person)) = (values.get("vardenhet_hsaid").cloned(), person) {
        let known = HsaId::parse(&raw)
            .ok()
            .is_some_and(|h| ctx.kiv.unit_by_hsa_id(h.as_str()).is_some());
        if !known {
            let provider_digits = valid(&values, "vardgivare_orgnr")
                .map(|o| o.chars().filter(char::is_ascii_digit).collect::<String>());
            let read: String = raw
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
            let near: Vec<&String> = person
                .units
                .iter()
                .filter(|u| {
                    let issuer = issuer_of(u);
                    provider_digits
                        .as_deref()
                        .is_none_or(|d| d.ends_with(&issuer) || issuer.ends_with(d))
                })
                .filter(|u| strsim::levenshtein(&read, &u.trim().to_uppercase()) <= 2)
                .collect();
            if let [unit] = near.as_slice() {
                if !doubtful.contains(&"vardenhet_hsaid") {
                    doubtful.push("vardenhet_hsaid");
                }
                // Repaired only when what was read breaks the grammar; a valid HSA-id that
                // names another unit stays as read, for staff to verify.
                if !passes_rule("vardenhet_hsaid", &raw, ctx) {
                    values.insert("vardenhet_hsaid", unit.trim().to_string());
                }
            }
        }
    }
    let unit = valid(&values, "vardenhet_hsaid").and_then(|h| ctx.kiv.unit_by_hsa_id(&h));
    let manager = unit.and_then(|u| manager_of(ctx, u));
    // Names as KIV spells them (issue 19, item 4): a name read one or two letters off the
    // KIV name of the unit, the person or the verksamhetschef that other, valid fields found
    // (`vårdcentralen` for `Vårdcentralen`, `ÖRman` for `Öhman`) is that name misread:
    // repaired, and still shown as uncertain.
    let kiv_names = [
        ("vardenhet_namn", unit.map(|u| u.name.clone())),
        ("fornamn", person.map(|p| p.given_name.clone())),
        ("efternamn", person.map(|p| p.surname.clone())),
        (
            "vc_namn",
            manager.map(|m| format!("{} {}", m.given_name.trim(), m.surname.trim())),
        ),
    ];
    for (key, known) in kiv_names {
        let (Some(raw), Some(known)) = (values.get(key), known) else {
            continue;
        };
        if let Some(name) = kiv_spelling(raw, known.trim()) {
            values.insert(key, name);
            if !doubtful.contains(&key) {
                doubtful.push(key);
            }
        }
    }
    let known_mail: Vec<&str> = [person, manager]
        .iter()
        .flatten()
        .filter_map(|p| p.mail.as_deref())
        .collect();
    // A character or two from the KIV address (`marialindgren@` for `maria.lindgren@`,
    // `orjan.lindgqvistevgregion.se`: a letter doubled, `@` read `e`), spaces OCR put in aside.
    let two_off = |read: &str, mail: &str| {
        let read: String = read.chars().filter(|c| !c.is_whitespace()).collect();
        strsim::levenshtein(&read.to_lowercase(), &mail.to_lowercase()) <= 2
    };
    for (key, own) in [("epost", person), ("vc_epost", manager)] {
        let Some(raw) = values.get(key).cloned() else {
            continue;
        };
        let own_mail = own.and_then(|p| p.mail.as_deref()).map(str::trim);
        let repaired = if passes_rule(key, &raw, ctx) {
            // A well-formed address near the KIV address of the person it belongs to is that
            // address misread.
            own_mail.filter(|mail| {
                !raw.trim().eq_ignore_ascii_case(mail)
                    && (mangled_address_of(&raw, mail) || two_off(&raw, mail))
            })
        } else {
            let mut matching: Vec<&str> = known_mail
                .iter()
                .copied()
                .filter(|m| mangled_address_of(&raw, m))
                .collect();
            matching.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            match matching.as_slice() {
                // Only `@` and dots mangled: the address, as sure as the rest of the field.
                [mail] => {
                    values.insert(key, mail.trim().to_string());
                    None
                }
                // Else the KIV address of the person the field belongs to, a little off.
                [] => own_mail.filter(|mail| two_off(&raw, mail)),
                _ => None,
            }
        };
        if let Some(mail) = repaired {
            // Repaired, and still shown as uncertain.
            values.insert(key, mail.to_string());
            if !doubtful.contains(&key) {
                doubtful.push(key);
            }
        }
    }
    OcrReading { values, doubtful }
}

/// KIV's spelling of a name read as `read`, when the two differ by OCR damage only: the same
/// letters but for their case, or one or two letters off in a name of five or more. A name
/// that differs more (another first name, a name changed at marriage) stays as read, and the
/// check warns that it differs from KIV.
fn kiv_spelling(read: &str, known: &str) -> Option<String> {
    let read = collapse_ws(read);
    if known.is_empty() || read == known {
        return None;
    }
    let (r, k) = (read.to_lowercase(), known.to_lowercase());
    let letters = k.chars().filter(|c| c.is_alphabetic()).count();
    let near = r == k || (letters >= 5 && strsim::levenshtein(&r, &k) <= 2.min(letters / 5));
    near.then(|| known.to_string())
}

/// The ten digits after `SE` in an HSA-id: its issuer's organisation number (SPEC §2.4).
fn issuer_of(hsa_id: &str) -> String {
    hsa_id.trim().chars().skip(2).take(10).collect()
}

/// Whether `read` is the address `known` with its `@` and dots mangled by OCR: every letter and
/// digit the same and in order, the `@` read as up to three other characters or lost (`Ö`, `&`, `(Q`,
/// `G`, a space) and each dot as at most one (`,`, a space) or none.
fn mangled_address_of(read: &str, known: &str) -> bool {
    // Diacritics OCR adds or drops (`örjan` for `orjan`) do not count either.
    let plain = |c: char| match c {
        'å' | 'ä' | 'à' | 'á' => 'a',
        'ö' | 'ø' | 'ó' => 'o',
        'é' | 'è' => 'e',
        'ü' => 'u',
        c => c,
    };
    let read: Vec<char> = read
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .map(plain)
        .collect();
    let known: Vec<char> = known
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(plain)
        .collect();
    // can[i][j]: known[i..] can be read as read[j..].
    let (n, m) = (known.len(), read.len());
    let mut can = vec![vec![false; m + 1]; n + 1];
    can[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            let k = known[i];
            can[i][j] = match k {
                '@' => (0..=3).any(|t| j + t <= m && can[i + 1][j + t]),
                '.' => can[i + 1][j] || (j < m && !read[j].is_alphanumeric() && can[i + 1][j + 1]),
                _ => j < m && read[j] == k && can[i + 1][j + 1],
            };
        }
    }
    can[0][0]
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
            'g' | 'q' => '9',
            'T' => '7',
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
                context.kiv_name = Some(kiv_name(person));
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
            context.kiv_name = Some(kiv_name(person));
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

/// The person's name as KIV spells it.
fn kiv_name(person: &Person) -> String {
    format!("{} {}", person.given_name.trim(), person.surname.trim())
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
    fn names_misread_by_ocr_take_kivs_spelling_and_others_stay() {
        let k = |read: &str, known: &str| kiv_spelling(read, known);
        assert_eq!(
            k(
                "vårdcentralen  Mölndals Torg",
                "Vårdcentralen Mölndals Torg"
            )
            .as_deref(),
            Some("Vårdcentralen Mölndals Torg")
        );
        assert_eq!(
            k("Ingrid ÖRman", "Ingrid Öhman").as_deref(),
            Some("Ingrid Öhman")
        );
        assert_eq!(k("ANNA", "Anna").as_deref(), Some("Anna"));
        // Another name, or a short one a letter off, is no misreading.
        assert_eq!(k("Anna", "Anna-Karin"), None);
        assert_eq!(k("Jon", "John"), None);
        assert_eq!(k("Andersen", "Andersson"), None);
        assert_eq!(k("Öhman", "Öhman"), None);
    }

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
    fn a_mangled_address_is_known_only_by_its_letters() {
        let known = "anna-karin.astrom@vgregion.se";
        for read in [
            "anna-karin.astromÖvgregion.se",
            "anna-karin.astrom&vgregion.se",
            "anna-karin.astrom(Qvgregion.se",
            "anna-karin.astromGvgregion.se",
            "anna-karin.astrom vgregion,se",
            "Anna-Karin.Astrom@vgregion.se",
            "änna-karin astromQvgregion.se",
        ] {
            assert!(mangled_address_of(read, known), "{read}");
        }
        for read in [
            "anna-karin.astron@vgregion.se",
            "annakarin.astromXXXXvgregion.se",
            "anna.astrom@vgregion.se",
        ] {
            assert!(!mangled_address_of(read, known), "{read}");
        }
    }

    #[test]
    fn a_strict_field_is_found_among_leader_dots_read_as_words() {
        let kiv = crate::directory::KivSnapshot::default();
        let providers = crate::providers::ProviderRegister::default();
        let ctx = CheckContext {
            kiv: &kiv,
            providers: &providers,
            email_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            sender: None,
            sender_authenticated: true,
        };
        assert_eq!(
            grammar_token("kortnummer", "seen 9752267910011288540 ene --", &ctx).as_deref(),
            Some("9752267910011288540")
        );
        assert_eq!(
            grammar_token(
                "vardenhet_hsaid",
                "ae SE5591234579-E000000000105 sera",
                &ctx
            )
            .as_deref(),
            Some("SE5591234579-E000000000105")
        );
        assert_eq!(grammar_token("kortnummer", "seen ene", &ctx), None);
    }

    #[test]
    fn speckle_is_stripped_from_the_ends() {
        assert_eq!(strip_speckle("Åström."), "Åström");
        assert_eq!(strip_speckle("‘Anna Åström ,"), "Anna Åström");
        assert_eq!(strip_speckle("070-123 45 67"), "070-123 45 67");
    }

    #[test]
    fn first_names_may_be_one_part() {
        assert!(first_name_matches("Anna", "Anna-Karin"));
        assert!(first_name_matches("anna-karin", "Anna-Karin"));
        assert!(first_name_matches("Karin", "Anna Karin"));
        assert!(!first_name_matches("Ann", "Anna-Karin"));
    }
}
