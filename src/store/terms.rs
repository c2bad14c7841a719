//! The search index of the staff pages (`case_terms`): each case's words, folded, one row per
//! word, so that a search is a few range scans of one B-tree on either backend instead of a
//! scan of every case's JSON.
//!
//! Folding: lower case, diacritics removed (`Håkansson` is `hakansson`), and only the ASCII
//! letters and digits kept; anything else separates words. A term is therefore made of
//! `[a-z0-9]` alone, which makes a prefix an exact range: every term that starts with `t` lies
//! in `[t, t + "{")` (`{` follows `z`), and `t` alone in `[t, t + "0")` (`0` is the smallest
//! character a term can hold).

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

/// The form fields whose words are searched: names (the form's and KIV's), the unit, the
/// provider, addresses and identifiers.
const TEXT_FIELDS: [&str; 11] = [
    "fornamn",
    "efternamn",
    "namn",
    "vardenhet_namn",
    "vardenhet_hsaid",
    "vardgivare_namn",
    "epost",
    "vc_namn",
    "vc_epost",
    "kortnummer",
    "vardgivare_orgnr",
];

/// What a case's terms are made of.
pub struct CaseText<'a> {
    pub case_id: &'a str,
    /// The form's fields (a JSON object of strings).
    pub fields: &'a serde_json::Value,
    pub subject: &'a str,
    pub sender: Option<&'a str>,
    /// The person's name as KIV spells it.
    pub kiv_name: Option<&'a str>,
}

/// Folds one character to what a term may hold: `None` for a separator.
fn fold_into(c: char, out: &mut String) -> bool {
    match c {
        'ø' | 'Ø' => out.push('o'),
        'æ' | 'Æ' => out.push_str("ae"),
        'ß' => out.push_str("ss"),
        'ð' | 'Ð' => out.push('d'),
        'þ' | 'Þ' => out.push_str("th"),
        'ł' | 'Ł' => out.push('l'),
        c => {
            let mut any = false;
            for d in c.nfd() {
                if d.is_ascii_alphanumeric() {
                    out.push(d.to_ascii_lowercase());
                    any = true;
                }
            }
            return any;
        }
    }
    true
}

/// The folded words of `text`.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        // A combining mark (a decomposed diacritic) belongs to the letter before it.
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if !fold_into(c, &mut word) && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The digits of `text`, when it holds nothing but digits, spaces and hyphens.
fn digits_only(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let rest = text
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+' || c.is_whitespace());
    (rest && !digits.is_empty()).then_some(digits)
}

/// A case's search terms.
pub fn case_terms(c: &CaseText<'_>, today: chrono::NaiveDate) -> BTreeSet<String> {
    let mut terms = BTreeSet::new();
    // The case number: `2026-000034` gives 2026, 000034 and 34, so that its tail finds it.
    // And its digits as one (`2026000034`), since a query of ten digits or more is one term.
    let digits: String = c.case_id.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 10 {
        terms.insert(digits);
    }
    for w in words(c.case_id) {
        let short = w.trim_start_matches('0');
        if !short.is_empty() && short.len() < w.len() {
            terms.insert(short.to_string());
        }
        terms.insert(w);
    }
    let field = |k: &str| c.fields.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let texts = TEXT_FIELDS.iter().map(|k| field(k)).chain([
        c.subject,
        c.sender.unwrap_or(""),
        c.kiv_name.unwrap_or(""),
    ]);
    for text in texts {
        terms.extend(words(text));
        // A number written in parts (an organisation number, a card number) is one term too.
        if let Some(d) = digits_only(text).filter(|d| d.len() >= 10) {
            terms.insert(d);
        }
    }
    // The personnummer as one 12-digit term, however the form wrote it.
    if let Ok(p) = crate::domain::Personnummer::parse(field("personnummer"), today) {
        terms.insert(p.digits12());
    }
    terms.retain(|t| t.len() <= 64);
    terms
}

/// The term ranges a query asks for, all of which a case must have (`[from, to)` each).
/// A personnummer (any accepted way of writing it) is its 12 digits; another number of ten
/// digits or more (an organisation number, a card number) its digits as a prefix; else each
/// number and each word of three letters or more (fewer would match nearly everything): a
/// short number (a case number's tail, a year) exactly, anything else as a prefix. At most
/// six words.
pub fn query_ranges(query: &str, today: chrono::NaiveDate) -> Vec<(String, String)> {
    let exact = |t: String| {
        let to = format!("{t}0");
        (t, to)
    };
    let prefix = |t: String| {
        let to = format!("{t}{{");
        (t, to)
    };
    let q = query.trim();
    if let Ok(p) = crate::domain::Personnummer::parse(q, today) {
        return vec![exact(p.digits12())];
    }
    // A whole case number (`TJID-2026-000034`) is its digits, one term: not the word `tjid`,
    // which every case has.
    let number = match q.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tjid") => &q[4..],
        _ => q,
    };
    if let Some(d) = digits_only(number).filter(|d| d.len() >= 10) {
        return vec![prefix(d)];
    }
    let mut seen = BTreeSet::new();
    words(q)
        .into_iter()
        .filter(|w| {
            let number = w.bytes().all(|b| b.is_ascii_digit());
            (number || w.len() >= 3) && seen.insert(w.clone())
        })
        .take(6)
        .map(|w| {
            if w.len() < 6 && w.bytes().all(|b| b.is_ascii_digit()) {
                // A short number with leading zeros (`0034`) is the number (`34`).
                match w.trim_start_matches('0') {
                    "" => exact(w),
                    n => exact(n.to_string()),
                }
            } else {
                prefix(w)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
    }

    fn matches(terms: &BTreeSet<String>, query: &str) -> bool {
        let ranges = query_ranges(query, today());
        !ranges.is_empty()
            && ranges
                .iter()
                .all(|(from, to)| terms.range(from.clone()..to.clone()).next().is_some())
    }

    #[test]
    fn words_fold_case_and_diacritics() {
        assert_eq!(words("Håkansson, Örjan"), ["hakansson", "orjan"]);
        assert_eq!(words("Ærø-Nielsen"), ["aero", "nielsen"]);
        assert_eq!(words("e\u{301}lise"), ["elise"]);
        assert_eq!(
            words("anna.lind@vgregion.se"),
            ["anna", "lind", "vgregion", "se"]
        );
    }

    #[test]
    fn a_case_is_found_by_its_number_names_and_identifiers() {
        let fields = serde_json::json!({
            "fornamn": "Örjan",
            "efternamn": "Håkansson",
            "personnummer": "19800101-1231",
            "vardenhet_hsaid": "SE2321000131-E000000000001",
            "vardgivare_orgnr": "232100-0131",
            "kortnummer": "9752 2701 0000 1234 5678",
        });
        let text = CaseText {
            case_id: "TJID-2026-000034",
            fields: &fields,
            subject: "Beställning",
            sender: Some("chef@vgregion.se"),
            kiv_name: Some("Jörgen Hakansson"),
        };
        let terms = case_terms(&text, today());
        for q in [
            "34",
            "000034",
            "2026-000034",
            "TJID-2026-000034",
            "tjid-2026-000034",
            "Hakansson",
            "håkansson",
            "HÅKANSSON örjan",
            "Jörgen",
            "jorg",
            "198001011231",
            "8001011231",
            "800101-1231",
            "2321000131",
            "232100-0131",
            "SE2321000131-E000000000001",
            "9752270100001234",
            "chef@vgregion.se",
            "beställ",
        ] {
            assert!(matches(&terms, q), "{q}: {terms:?}");
        }
        for q in [
            "35",
            "3",
            "2026-000035",
            "Svensson",
            "19800101-1249",
            "",
            "  ",
        ] {
            assert!(!matches(&terms, q), "{q}");
        }
    }

    #[test]
    fn ranges_hold_exactly_their_terms() {
        let terms: BTreeSet<String> = ["34", "340", "34a", "3"].map(String::from).into();
        let (from, to) = &query_ranges("34", today())[0];
        let hit: Vec<_> = terms.range(from.clone()..to.clone()).collect();
        assert_eq!(hit, ["34"]);
        let (from, to) = &query_ranges("hak", today())[0];
        assert_eq!((from.as_str(), to.as_str()), ("hak", "hak{"));
    }
}
