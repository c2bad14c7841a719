//! Label matching (SPEC §2.1): without regard to case, spacing, a trailing colon or a missing
//! diacritic, and tolerant of typical OCR damage (`rn` read for `m`, a letter lost or doubled).
//! A label is matched whole, and the longer label wins.

use std::sync::LazyLock;

use super::spec::{FieldSpec, FieldType, FormKind, SIGNATURE_LABEL};

/// Folds a label or a piece of text to its matching key: lower case, no diacritics, only
/// letters and digits, OCR look-alikes folded (`rn`→`m`, `0`→`o`, `1`/`|`→`l`).
pub fn fold(s: &str) -> String {
    fold_letters(s).replace("rn", "m")
}

/// `fold` without joining `rn` into `m`.
fn fold_letters(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            'å' | 'ä' | 'à' | 'á' | 'â' | 'Å' | 'Ä' | 'À' | 'Á' | 'Â' => 'a',
            'ö' | 'ø' | 'ó' | 'ò' | 'ô' | 'Ö' | 'Ø' | 'Ó' | 'Ò' | 'Ô' => 'o',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'ü' | 'ú' | 'ù' | 'Ü' | 'Ú' | 'Ù' => 'u',
            'í' | 'ì' | 'ï' | 'Í' | 'Ì' | 'Ï' => 'i',
            '0' => 'o',
            '1' | '|' => 'l',
            c if c.is_alphanumeric() => c.to_lowercase().next().unwrap_or(c),
            _ => continue,
        };
        out.push(c);
    }
    out
}

/// How far a folded text may be from a folded label and still count as that label.
/// Whether `read` is an option's text `option` (both folded) as OCR may damage it: exactly for a
/// short option, one character off in 5–7 letters, two from 8 on (a ring drawn round the text
/// turns `Utkörning` into `Gköming`).
pub fn near_option(read: &str, option: &str) -> bool {
    let allowed = match option.len() {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    };
    strsim::levenshtein(read, option) <= allowed
}

/// A folded label as OCR often reads it, two narrow letters run together into one `m`
/// (`Befattning` → `Befattmng`, `Förnamn` written `rn` → `m`): one confusion, one edit.
fn ocr_merged(label: &str) -> String {
    label
        .replace("rn", "m")
        .replace("ni", "m")
        .replace("in", "m")
}

/// Labels this long (folded) or longer may be matched with their end cut off (`lookup_cut`).
const CUT_LABEL_MIN: usize = 16;

fn allowed_distance(label_len: usize) -> usize {
    match label_len {
        0..=5 => 0,
        6..=11 => 1,
        // `Organisationsnummer` read `Orgaruasationsnummer`: the long labels are far apart.
        12..=17 => 2,
        _ => 3,
    }
}

/// One label of one form kind.
#[derive(Debug, Clone)]
pub struct Label {
    pub folded: String,
    pub target: LabelTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelTarget {
    Field(&'static FieldSpec),
    /// A label that is printed on the form but is not a field (the signature box): it ends
    /// the value of the field before it.
    Stop,
}

/// The labels of a kind, plus the stop labels.
pub struct LabelSet {
    pub kind: FormKind,
    labels: Vec<Label>,
    /// Folded option texts of the choice fields: they are never labels of their own.
    options: Vec<String>,
}

static ORDER: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(FormKind::Order));
static DEREGISTRATION: LazyLock<LabelSet> =
    LazyLock::new(|| LabelSet::new(FormKind::Deregistration));

impl LabelSet {
    pub fn of(kind: FormKind) -> &'static LabelSet {
        match kind {
            FormKind::Order => &ORDER,
            FormKind::Deregistration => &DEREGISTRATION,
        }
    }

    fn new(kind: FormKind) -> LabelSet {
        let mut labels: Vec<Label> = kind
            .fields()
            .iter()
            .map(|f| Label {
                folded: fold(f.label),
                target: LabelTarget::Field(f),
            })
            .collect();
        for stop in [SIGNATURE_LABEL, "Namnförtydligande", "Ort och datum"] {
            labels.push(Label {
                folded: fold(stop),
                target: LabelTarget::Stop,
            });
        }
        let options = kind
            .fields()
            .iter()
            .filter_map(|f| match f.field_type {
                FieldType::Choice(opts) => Some(opts.iter().map(|o| fold(o.label))),
                _ => None,
            })
            .flatten()
            .collect();
        LabelSet {
            kind,
            labels,
            options,
        }
    }

    /// The label that the folded text is, if any. Exact matches win over near ones; among
    /// near ones the closest, then the longest.
    pub fn lookup(&self, folded: &str) -> Option<&Label> {
        self.lookup_scored(folded).map(|(l, _)| l)
    }

    /// Like `lookup`, with the edit distance of the match (0 = exact).
    pub fn lookup_scored(&self, folded: &str) -> Option<(&Label, usize)> {
        self.lookup_lost(folded, &[])
    }

    /// Like `lookup_scored`, where the fields `lost` have no label found as printed on this part
    /// of the page: their labels of 6 to 11 letters may be two characters off instead of one
    /// when the text begins with the label's letter (`Eflerpamn` for `Efternamn`, `Befattrung`
    /// for `Befattning`). A label found elsewhere on the page keeps the strict distance, so a
    /// value that happens to resemble it stays a value.
    pub fn lookup_lost(&self, folded: &str, lost: &[&str]) -> Option<(&Label, usize)> {
        if folded.is_empty() {
            return None;
        }
        if let Some(l) = self.labels.iter().find(|l| l.folded == folded) {
            return Some((l, 0));
        }
        if self.options.iter().any(|o| o == folded) {
            return None;
        }
        let near = self
            .labels
            .iter()
            .filter_map(|l| {
                let mut allowed = allowed_distance(l.folded.len());
                // A lost label is also compared as printed, its `rn` not joined (`Efternamn`
                // read `Eflerpamn`: the `r` and `n` were read apart).
                let mut printed = None;
                if let LabelTarget::Field(f) = l.target {
                    if lost.contains(&f.key)
                        && allowed == 1
                        && folded.chars().next() == l.folded.chars().next()
                    {
                        allowed = 2;
                        printed = Some(fold_letters(f.label));
                    }
                }
                if allowed == 0 || folded.len().abs_diff(l.folded.len()) > allowed + 1 {
                    return None;
                }
                let d = strsim::levenshtein(folded, &l.folded)
                    .min(strsim::levenshtein(folded, &ocr_merged(&l.folded)))
                    .min(printed.map_or(usize::MAX, |p| strsim::levenshtein(folded, &p)));
                (d <= allowed).then_some((d, std::cmp::Reverse(l.folded.len()), l))
            })
            .min_by_key(|(d, len, _)| (*d, *len))
            .map(|(d, _, l)| (l, d));
        near.or_else(|| self.lookup_cut(folded))
    }

    /// A long label whose end OCR lost (`Verksamhetschefens e-post` read `Verksamhetschetens
    /// e-;`): the text is the label's first three quarters or more, one character off at
    /// most, and no option's text. It ranks after every whole match (its distance is one
    /// more than any near match's).
    fn lookup_cut(&self, folded: &str) -> Option<(&Label, usize)> {
        if self.options.iter().any(|o| near_option(folded, o)) {
            return None;
        }
        let mut cut = self.labels.iter().filter(|l| {
            let n = folded.chars().count();
            let len = l.folded.chars().count();
            let head: String = l.folded.chars().take(n).collect();
            len >= CUT_LABEL_MIN
                && n < len
                && n * 4 >= len * 3
                && strsim::levenshtein(folded, &head) <= 1
        });
        // Two labels that begin alike are not told apart by their beginning.
        match (cut.next(), cut.next()) {
            (Some(l), None) => Some((l, allowed_distance(l.folded.len()) + 1)),
            _ => None,
        }
    }

    /// Folded option texts of a choice field, with their export values.
    pub fn option_keys(field: &FieldSpec) -> Vec<(String, &'static str)> {
        match field.field_type {
            FieldType::Choice(opts) => opts.iter().map(|o| (fold(o.label), o.export)).collect(),
            _ => Vec::new(),
        }
    }
}

/// Whether a line is the title of a form of `kind`: apart from the form id (and a parenthesised
/// note around it) and spacing, its text is the title itself.
pub fn is_title(line: &str, kind: FormKind) -> bool {
    let stripped = strip_form_id(line);
    let folded = fold(&stripped);
    let title = fold(kind.title());
    folded == title
        || (folded.len().abs_diff(title.len()) <= 2 && strsim::levenshtein(&folded, &title) <= 2)
}

/// Which form's title a line is, if any.
pub fn title_kind(line: &str) -> Option<FormKind> {
    // Cheap reject first: titles are short lines.
    if line.len() > 120 {
        return None;
    }
    FormKind::ALL.into_iter().find(|k| is_title(line, *k))
}

/// Removes `TJID-101`-style ids, with a surrounding parenthesised note such as
/// `(TJID-101 version 2019)`.
fn strip_form_id(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = find_ci(rest, "tjid") {
        let (before, after) = rest.split_at(pos);
        // A parenthesis opened right before the id swallows everything up to its closing one.
        let trimmed = before.trim_end();
        if let Some(open) = trimmed.strip_suffix('(') {
            out.push_str(open);
            rest = match after.find(')') {
                Some(close) => &after[close + 1..],
                None => "",
            };
        } else {
            out.push_str(before);
            let end = after
                .char_indices()
                .find(|(i, c)| *i >= 4 && !(c.is_ascii_alphanumeric() || *c == '-'))
                .map(|(i, _)| i)
                .unwrap_or(after.len());
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: FormKind, text: &str) -> Option<&'static str> {
        match LabelSet::of(kind).lookup(&fold(text))?.target {
            LabelTarget::Field(f) => Some(f.key),
            LabelTarget::Stop => Some("STOP"),
        }
    }

    #[test]
    fn labels_ignore_case_spacing_colon_and_diacritics() {
        assert_eq!(key(FormKind::Order, "Förnamn:"), Some("fornamn"));
        assert_eq!(key(FormKind::Order, "FORSTA"), None);
        assert_eq!(key(FormKind::Order, "FORNAMN"), Some("fornamn"));
        assert_eq!(
            key(FormKind::Order, "Vårdenhetens HSA-id"),
            Some("vardenhet_hsaid")
        );
        assert_eq!(
            key(FormKind::Order, "Vardenhetens HSA id :"),
            Some("vardenhet_hsaid")
        );
        assert_eq!(key(FormKind::Order, "Vårdenhet"), Some("vardenhet_namn"));
        assert_eq!(key(FormKind::Order, "Mobiltelefon"), Some("mobil"));
        assert_eq!(key(FormKind::Order, "Telefon"), Some("vc_telefon"));
        assert_eq!(
            key(FormKind::Order, "Verksamhetschefens e-post"),
            Some("vc_epost")
        );
        assert_eq!(
            key(FormKind::Order, "Utlämningsställe (namn)"),
            Some("utlamningsstalle")
        );
        assert_eq!(key(FormKind::Order, "Utlämningsställe"), None);
        assert_eq!(key(FormKind::Order, "Underskrift"), Some("STOP"));
        assert_eq!(
            key(FormKind::Deregistration, "Kortinnehavarens namn"),
            Some("namn")
        );
    }

    #[test]
    fn a_long_label_whose_end_ocr_lost_is_found_but_no_option_nor_a_short_start() {
        assert_eq!(
            key(FormKind::Order, "Verksamhetschetens e-;"),
            Some("vc_epost")
        );
        assert_eq!(
            key(FormKind::Order, "Vårdenhetens HSA"),
            Some("vardenhet_hsaid")
        );
        // An option's text (damaged) is not the start of `Utlämningsställe (namn)`.
        assert_eq!(key(FormKind::Order, "Uttämningsställe"), None);
        // Too little of the label to tell.
        assert_eq!(key(FormKind::Order, "Vårdenhetens"), None);
        assert_eq!(key(FormKind::Order, "Organisations"), None);
    }

    #[test]
    fn labels_survive_ocr_damage() {
        assert_eq!(key(FormKind::Order, "Personnumrner"), Some("personnummer"));
        assert_eq!(key(FormKind::Order, "Fömamn"), Some("fornamn"));
        assert_eq!(key(FormKind::Order, "E postadress"), Some("epost"));
        assert_eq!(key(FormKind::Order, "E-p0stadress"), Some("epost"));
        assert_eq!(key(FormKind::Order, "Befattnlng"), Some("befattning"));
        // `ni` run together into `m` is one confusion.
        assert_eq!(key(FormKind::Order, "Befattmng"), Some("befattning"));
        // Short labels are matched exactly only.
        assert_eq!(key(FormKind::Order, "Datun"), None);
    }

    #[test]
    fn a_label_lost_on_the_page_may_be_two_off_and_a_found_one_may_not() {
        let set = LabelSet::of(FormKind::Order);
        let lost = |read: &str, lost: &[&str]| match set.lookup_lost(&fold(read), lost) {
            Some((
                Label {
                    target: LabelTarget::Field(f),
                    ..
                },
                _,
            )) => Some(f.key),
            _ => None,
        };
        // Two characters off: no label while the label is found elsewhere on the page.
        assert_eq!(lost("Eflerpamn", &[]), None);
        assert_eq!(lost("Befattrung", &[]), None);
        // Its label lost: the text is that label.
        assert_eq!(lost("Eflerpamn", &["efternamn"]), Some("efternamn"));
        assert_eq!(lost("Befattrung", &["befattning"]), Some("befattning"));
        assert_eq!(lost("Fornaron", &["fornamn"]), Some("fornamn"));
        // Not when it begins with another letter, nor three off.
        assert_eq!(lost("Aflerpamn", &["efternamn"]), None);
        assert_eq!(lost("Batattnng", &["befattning"]), None);
        // A short label stays exact.
        assert_eq!(lost("Datun", &["datum"]), None);
    }

    #[test]
    fn titles_apart_from_the_form_id() {
        assert_eq!(
            title_kind("Beställning av eTjänstekort"),
            Some(FormKind::Order)
        );
        assert_eq!(
            title_kind("BESTALLNING AV ETJANSTEKORT   TJID-101"),
            Some(FormKind::Order)
        );
        assert_eq!(
            title_kind("Beställning av eTjänstekort (TJID-101 version 2019)"),
            Some(FormKind::Order)
        );
        assert_eq!(
            title_kind("TJID-102 Avregistrering av eTjänstekort"),
            Some(FormKind::Deregistration)
        );
        assert_eq!(
            title_kind("Här kommer en beställning av eTjänstekort"),
            None
        );
        assert_eq!(title_kind("Beställning av eTjänstekort för Anna"), None);
    }
}
