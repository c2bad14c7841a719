//! Dates written on the forms, and the date rule of SPEC §2.2.

use chrono::{Days, NaiveDate};

use super::text::{collapse_ws, is_dash};
use super::InvalidValue;

/// Swedish month names (lower case), January first.
const MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

const UNRECOGNISED: InvalidValue = InvalidValue("date is not in a recognised format");
const NO_SUCH_DATE: InvalidValue = InvalidValue("date does not exist");

/// Parses a date as written on a form.
///
/// Accepted: `YYYY-MM-DD`, `YYYY.MM.DD`, `YYYY/MM/DD` (month and day may have one digit),
/// `YYYYMMDD`, `YY-MM-DD` (year 20YY), `D/M YYYY`, `D/M/YYYY`, `D.M.YYYY` (day first, as in
/// Sweden) and `D month YYYY` with a Swedish month name or its three-letter abbreviation
/// (optionally with a dot, `sept` also accepted), any case, optionally preceded by `den` and
/// with `:e`/`:a` after the day (`den 3:e nov. 2026`). Surrounding white space is trimmed;
/// spaces around the separators of the numeric forms are ignored.
pub fn parse_form_date(s: &str) -> Result<NaiveDate, InvalidValue> {
    let text: String = collapse_ws(s)
        .chars()
        .map(|c| if is_dash(c) { '-' } else { c })
        .collect::<String>()
        .to_lowercase();
    if text.is_empty() {
        return Err(InvalidValue("date is empty"));
    }
    if text.chars().any(char::is_alphabetic) {
        return parse_with_month_name(&text);
    }
    // `D/M YYYY`: the only numeric form whose space matters.
    if let Some((dm, year)) = text.split_once(' ') {
        if let Some((d, m)) = dm.split_once('/') {
            if let (Some(d), Some(m), Some(y)) = (num(d, 1, 2), num(m, 1, 2), num(year, 4, 4)) {
                return ymd(y, m, d);
            }
        }
    }
    let compact: String = text.chars().filter(|c| *c != ' ').collect();
    if let Some(y) = num(&compact, 8, 8) {
        return ymd(y / 10_000, (y / 100) % 100, y % 100);
    }
    let sep = compact
        .chars()
        .find(|c| !c.is_ascii_digit())
        .ok_or(UNRECOGNISED)?;
    if !matches!(sep, '-' | '.' | '/') {
        return Err(UNRECOGNISED);
    }
    let parts: Vec<&str> = compact.split(sep).collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(UNRECOGNISED);
    };
    if let (Some(y), Some(m), Some(d)) = (num(a, 4, 4), num(b, 1, 2), num(c, 1, 2)) {
        return ymd(y, m, d);
    }
    if sep == '-' {
        if let (Some(y), Some(m), Some(d)) = (num(a, 2, 2), num(b, 2, 2), num(c, 2, 2)) {
            return ymd(2000 + y, m, d);
        }
    } else if let (Some(d), Some(m), Some(y)) = (num(a, 1, 2), num(b, 1, 2), num(c, 4, 4)) {
        return ymd(y, m, d);
    }
    Err(UNRECOGNISED)
}

/// `D month YYYY`, `text` lower-cased with single spaces.
fn parse_with_month_name(text: &str) -> Result<NaiveDate, InvalidValue> {
    let mut words: Vec<&str> = text.split(' ').collect();
    if words.first() == Some(&"den") {
        words.remove(0);
    }
    let [day, month, year] = words.as_slice() else {
        return Err(UNRECOGNISED);
    };
    let day = day
        .strip_suffix(":e")
        .or_else(|| day.strip_suffix(":a"))
        .or_else(|| day.strip_suffix('.'))
        .unwrap_or(day);
    let (Some(d), Some(y)) = (num(day, 1, 2), num(year, 4, 4)) else {
        return Err(UNRECOGNISED);
    };
    let m = month_number(month).ok_or(InvalidValue("date has an unknown month name"))?;
    ymd(y, m, d)
}

/// 1–12 for a Swedish month name, its three-letter abbreviation (`maj` is both) or `sept`,
/// optionally followed by a dot.
fn month_number(word: &str) -> Option<u32> {
    let word = word.strip_suffix('.').unwrap_or(word);
    let word = if word == "sept" { "sep" } else { word };
    MONTHS
        .iter()
        .zip(1u32..)
        .find(|(name, _)| **name == word || (word.len() == 3 && name.starts_with(word)))
        .map(|(_, n)| n)
}

/// `s` as a number when it is `min..=max` ASCII digits.
fn num(s: &str, min: usize, max: usize) -> Option<u32> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn ymd(y: u32, m: u32, d: u32) -> Result<NaiveDate, InvalidValue> {
    let y = i32::try_from(y).map_err(|_| NO_SUCH_DATE)?;
    NaiveDate::from_ymd_opt(y, m, d).ok_or(NO_SUCH_DATE)
}

/// The date rule of a form: `date` is not after `email_date` + 1 day and not before
/// `email_date` − 90 days (both ends included).
pub fn within_date_window(date: NaiveDate, email_date: NaiveDate) -> bool {
    let not_too_late = email_date
        .checked_add_days(Days::new(1))
        .is_none_or(|last| date <= last);
    let not_too_early = email_date
        .checked_sub_days(Days::new(90))
        .is_none_or(|first| date >= first);
    not_too_late && not_too_early
}

/// `YYYY-MM-DD`.
pub fn format_iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    #[test]
    fn numeric_formats() {
        let want = date(2026, 11, 3);
        for s in [
            "2026-11-03",
            "2026-11-3",
            "20261103",
            "26-11-03",
            "3/11 2026",
            "03/11 2026",
            "3/11/2026",
            "3.11.2026",
            "2026.11.03",
            "2026/11/03",
            "  2026-11-03 \n",
            "2026 - 11 - 03",
            "2026\u{2013}11\u{2013}03",
            "2026\u{00A0}11 03",
        ] {
            assert_eq!(parse_form_date(s), Ok(want), "{s:?}");
        }
        assert_eq!(parse_form_date("20/11 2026"), Ok(date(2026, 11, 20)));
        assert_eq!(parse_form_date("00-01-01"), Ok(date(2000, 1, 1)));
        assert_eq!(parse_form_date("99-12-31"), Ok(date(2099, 12, 31)));
    }

    #[test]
    fn swedish_month_names() {
        let full = [
            "januari",
            "februari",
            "mars",
            "april",
            "maj",
            "juni",
            "juli",
            "augusti",
            "september",
            "oktober",
            "november",
            "december",
        ];
        for (i, name) in full.iter().enumerate() {
            let m = i as u32 + 1;
            assert_eq!(
                parse_form_date(&format!("3 {name} 2026")),
                Ok(date(2026, m, 3))
            );
            let upper = name.to_uppercase();
            assert_eq!(
                parse_form_date(&format!("3 {upper} 2026")),
                Ok(date(2026, m, 3))
            );
            let abbr = &name[..3];
            assert_eq!(
                parse_form_date(&format!("3 {abbr} 2026")),
                Ok(date(2026, m, 3))
            );
            assert_eq!(
                parse_form_date(&format!("3 {abbr}. 2026")),
                Ok(date(2026, m, 3))
            );
        }
        assert_eq!(parse_form_date("3 nov. 2026"), Ok(date(2026, 11, 3)));
        assert_eq!(parse_form_date("03 November 2026"), Ok(date(2026, 11, 3)));
        assert_eq!(
            parse_form_date("  3   november\t2026 "),
            Ok(date(2026, 11, 3))
        );
        assert_eq!(parse_form_date("den 3:e nov 2026"), Ok(date(2026, 11, 3)));
        assert_eq!(parse_form_date("1:a maj 2026"), Ok(date(2026, 5, 1)));
        assert_eq!(parse_form_date("15 sept. 2026"), Ok(date(2026, 9, 15)));
        assert_eq!(parse_form_date("3. november 2026"), Ok(date(2026, 11, 3)));
    }

    #[test]
    fn invalid_dates() {
        let bad = [
            ("", "date is empty"),
            ("   ", "date is empty"),
            ("2026-02-30", "date does not exist"),
            ("2026-13-01", "date does not exist"),
            ("2026-00-10", "date does not exist"),
            ("20260230", "date does not exist"),
            ("32/1 2026", "date does not exist"),
            ("29 februari 2026", "date does not exist"),
            ("3 novembre 2026", "date has an unknown month name"),
            ("3 no 2026", "date has an unknown month name"),
            ("3 nove 2026", "date has an unknown month name"),
            ("3 november", "date is not in a recognised format"),
            ("november 3 2026", "date is not in a recognised format"),
            ("idag", "date is not in a recognised format"),
            ("2026-11", "date is not in a recognised format"),
            ("2026-11/03", "date is not in a recognised format"),
            ("2026_11_03", "date is not in a recognised format"),
            ("26.11.03", "date is not in a recognised format"),
            ("3/11 26", "date is not in a recognised format"),
            ("2026113", "date is not in a recognised format"),
            ("202611031", "date is not in a recognised format"),
            ("12345-11-03", "date is not in a recognised format"),
            ("-", "date is not in a recognised format"),
            ("--", "date is not in a recognised format"),
        ];
        for (s, why) in bad {
            assert_eq!(parse_form_date(s), Err(InvalidValue(why)), "{s:?}");
        }
        assert_eq!(parse_form_date("29 februari 2028"), Ok(date(2028, 2, 29)));
    }

    #[test]
    fn window_edges() {
        let email = date(2026, 11, 20);
        assert!(within_date_window(email, email));
        assert!(within_date_window(date(2026, 11, 21), email)); // one day of slack
        assert!(!within_date_window(date(2026, 11, 22), email));
        assert!(within_date_window(date(2026, 8, 22), email)); // exactly 90 days before
        assert!(!within_date_window(date(2026, 8, 21), email)); // 91 days before
        assert!(!within_date_window(date(2025, 11, 20), email));
        // Across a year end.
        let email = date(2026, 12, 31);
        assert!(within_date_window(date(2027, 1, 1), email));
        assert!(!within_date_window(date(2027, 1, 2), email));
        // Extremes do not panic.
        assert!(within_date_window(NaiveDate::MAX, NaiveDate::MAX));
        assert!(within_date_window(NaiveDate::MIN, NaiveDate::MIN));
        assert!(!within_date_window(NaiveDate::MIN, NaiveDate::MAX));
    }

    #[test]
    fn iso_format() {
        assert_eq!(format_iso(date(2026, 1, 3)), "2026-01-03");
        assert_eq!(format_iso(date(987, 12, 31)), "0987-12-31");
        let d = parse_form_date("3 nov. 2026").unwrap();
        assert_eq!(format_iso(d), "2026-11-03");
    }
}
