//! Swedish personnummer and samordningsnummer (coordination number).

use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::luhn::luhn_valid;
use super::text::is_dash;
use super::InvalidValue;

/// A valid personnummer or samordningsnummer.
///
/// `Display` and `Debug` print the masked form (`YYYYMMDD-XXXX`), so the full number can never
/// reach a log by accident; use [`Personnummer::normalized`] or [`Personnummer::digits12`]
/// where the full number is really needed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Personnummer {
    /// The real birth date (for a samordningsnummer, the written day minus 60).
    birth_date: NaiveDate,
    /// True for a samordningsnummer (written day is the real day + 60).
    coordination: bool,
    /// Birth number (3 digits) and check digit, each 0–9.
    tail: [u8; 4],
}

/// The separator written between the date and the last four digits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    None,
    Dash,
    Plus,
}

impl Personnummer {
    /// Parses a personnummer or samordningsnummer.
    ///
    /// Accepted forms: `YYMMDD-NNNC`, `YYMMDD+NNNC` (`+`: 100 years or older), `YYMMDDNNNC`,
    /// `YYYYMMDDNNNC` and `YYYYMMDD-NNNC`; white space anywhere is ignored, and a dash-like
    /// character (en dash, minus sign, …) counts as `-`.
    ///
    /// A 10-digit form gets the century that puts the birth date latest while not after
    /// `reference` (with `+`: whose 100th birthday is not after `reference`); a date that does
    /// not exist in a century (29 February) rules that century out. Only centuries that make
    /// the holder younger than about 200 years are considered. A 12-digit form keeps its century.
    pub fn parse(s: &str, reference: NaiveDate) -> Result<Self, InvalidValue> {
        let mut digits: Vec<u8> = Vec::with_capacity(12);
        let mut sep: Option<(usize, Sep)> = None;
        let mut any = false;
        for c in s.chars() {
            if c.is_whitespace() {
                continue;
            }
            any = true;
            let this_sep = if c == '+' {
                Sep::Plus
            } else if is_dash(c) {
                Sep::Dash
            } else if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
                // `to_digit(10)` of an ASCII digit is below 10.
                digits.push(d as u8);
                continue;
            } else {
                return Err(InvalidValue(
                    "personnummer may only hold digits, a '-' or '+' separator and spaces",
                ));
            };
            if sep.is_some() {
                return Err(InvalidValue("personnummer has more than one separator"));
            }
            sep = Some((digits.len(), this_sep));
        }
        if !any {
            return Err(InvalidValue("personnummer is empty"));
        }

        let (sep_pos, sep_kind) = match sep {
            Some((pos, kind)) => (Some(pos), kind),
            None => (None, Sep::None),
        };
        let long = match (digits.len(), sep_pos, sep_kind) {
            (10, None, _) | (10, Some(6), _) => false,
            (12, None, _) | (12, Some(8), Sep::Dash) => true,
            (12, Some(8), _) => {
                return Err(InvalidValue(
                    "personnummer with a four-digit year cannot use the '+' separator",
                ))
            }
            (10 | 12, Some(_), _) => {
                return Err(InvalidValue("personnummer separator is in the wrong place"))
            }
            _ => return Err(InvalidValue("personnummer must have 10 or 12 digits")),
        };

        let (century, ten) = if long {
            let century = digits
                .first_chunk::<2>()
                .map(|&[a, b]| two(a, b))
                .ok_or(InvalidValue("personnummer must have 10 or 12 digits"))?;
            (Some(century), digits.get(2..))
        } else {
            (None, digits.get(..))
        };
        let ten: [u8; 10] = ten
            .and_then(|t| t.try_into().ok())
            .ok_or(InvalidValue("personnummer must have 10 or 12 digits"))?;

        let yy = two(ten[0], ten[1]);
        let month = two(ten[2], ten[3]);
        let written_day = two(ten[4], ten[5]);
        if !(1..=12).contains(&month) {
            return Err(InvalidValue("personnummer month is not valid"));
        }
        let (day, coordination) = match written_day {
            1..=31 => (written_day, false),
            61..=91 => (written_day - 60, true),
            _ => return Err(InvalidValue("personnummer day is not valid")),
        };
        if ten[6] == 0 && ten[7] == 0 && ten[8] == 0 {
            return Err(InvalidValue("personnummer birth number is 000"));
        }
        let ten_str: String = ten.iter().map(|d| char::from(b'0' + d)).collect();
        if !luhn_valid(&ten_str) {
            return Err(InvalidValue("personnummer check digit is wrong"));
        }

        let birth_date = match century {
            Some(cc) => NaiveDate::from_ymd_opt(cc as i32 * 100 + yy as i32, month, day)
                .ok_or(InvalidValue("personnummer date does not exist"))?,
            None => choose_century(yy as i32, month, day, sep_kind == Sep::Plus, reference)
                .ok_or(InvalidValue("personnummer date does not exist"))?,
        };

        Ok(Personnummer {
            birth_date,
            coordination,
            tail: [ten[6], ten[7], ten[8], ten[9]],
        })
    }

    /// `YYYYMMDD-NNNC` (for a samordningsnummer the day is the written one, i.e. + 60).
    pub fn normalized(&self) -> String {
        format!("{}-{}", self.date_part(), self.tail_str())
    }

    /// `YYYYMMDDNNNC`, the form of KIV's `personalIdentityNumber`.
    pub fn digits12(&self) -> String {
        format!("{}{}", self.date_part(), self.tail_str())
    }

    /// `YYYYMMDD-XXXX`: safe for logs and replies.
    pub fn masked(&self) -> String {
        format!("{}-XXXX", self.date_part())
    }

    /// True for a samordningsnummer (day written + 60).
    pub fn is_coordination_number(&self) -> bool {
        self.coordination
    }

    /// The real birth date (for a samordningsnummer, the written day − 60).
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// `YYYYMMDD` with the day as written.
    fn date_part(&self) -> String {
        let day = self.birth_date.day() + if self.coordination { 60 } else { 0 };
        format!(
            "{:04}{:02}{:02}",
            self.birth_date.year(),
            self.birth_date.month(),
            day
        )
    }

    fn tail_str(&self) -> String {
        self.tail.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

/// Two decimal digits (each 0–9) as a number.
fn two(a: u8, b: u8) -> u32 {
    u32::from(a) * 10 + u32::from(b)
}

/// The birth date of a 10-digit form: the latest year ending in `yy` in which `month`/`day`
/// exists and which is not after `reference` (with `plus`: whose 100th anniversary is not after
/// `reference`), no more than 200 years before `reference`'s year.
fn choose_century(
    yy: i32,
    month: u32,
    day: u32,
    plus: bool,
    reference: NaiveDate,
) -> Option<NaiveDate> {
    let ref_year = reference.year();
    let ref_md = (reference.month(), reference.day());
    let age_offset = if plus { 100 } else { 0 };
    let top = ref_year.div_euclid(100) * 100 + yy;
    (0..4)
        .map(|k| top - 100 * k)
        .filter(|&y| y >= ref_year - 200)
        .filter(|&y| (y + age_offset, month, day) <= (ref_year, ref_md.0, ref_md.1))
        .find_map(|y| NaiveDate::from_ymd_opt(y, month, day))
}

impl fmt::Display for Personnummer {
    /// The masked form, `YYYYMMDD-XXXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Personnummer {
    /// Masked as well: `Personnummer(YYYYMMDD-XXXX)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Personnummer({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::luhn::luhn_check_digit;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    fn ref_2026() -> NaiveDate {
        date(2026, 11, 20)
    }

    fn p(s: &str) -> Result<Personnummer, InvalidValue> {
        Personnummer::parse(s, ref_2026())
    }

    /// `body9` (YYMMDDNNN) followed by its correct check digit.
    fn with_check(body9: &str) -> String {
        let c = luhn_check_digit(body9).expect("digits");
        format!("{body9}{c}")
    }

    #[test]
    fn spec_examples() {
        let a = p("19121212-1212").unwrap();
        assert_eq!(a.normalized(), "19121212-1212");
        assert_eq!(a.digits12(), "191212121212");
        assert_eq!(a.masked(), "19121212-XXXX");
        assert_eq!(a.birth_date(), date(1912, 12, 12));
        assert!(!a.is_coordination_number());

        assert_eq!(p("19900101-0017").unwrap().normalized(), "19900101-0017");
        assert_eq!(p("900101-0017").unwrap().normalized(), "19900101-0017");
        assert_eq!(p("9001010017").unwrap().normalized(), "19900101-0017");
        assert_eq!(p("199001010017").unwrap().normalized(), "19900101-0017");
    }

    #[test]
    fn short_form_gets_latest_century() {
        assert_eq!(p("121212-1212").unwrap().normalized(), "20121212-1212");
        assert_eq!(p("1212121212").unwrap().birth_date(), date(2012, 12, 12));
    }

    #[test]
    fn plus_means_a_hundred_years_more() {
        let a = p("121212+1212").unwrap();
        assert_eq!(a.normalized(), "19121212-1212");
        assert_eq!(a.birth_date(), date(1912, 12, 12));
        // 90-01-01 with '-' is 1990, with '+' 1890.
        assert_eq!(p("900101+0017").unwrap().normalized(), "18900101-0017");
    }

    #[test]
    fn century_boundary_at_reference_day() {
        let dec = with_check("261215123");
        let nov15 = with_check("261115123");
        let nov20 = with_check("261120123");
        let nov21 = with_check("261121123");
        // 2026-12-15 would be after the reference 2026-11-20: 1926.
        assert_eq!(p(&dec).unwrap().birth_date(), date(1926, 12, 15));
        assert_eq!(p(&nov15).unwrap().birth_date(), date(2026, 11, 15));
        // The reference day itself is allowed.
        assert_eq!(p(&nov20).unwrap().birth_date(), date(2026, 11, 20));
        assert_eq!(p(&nov21).unwrap().birth_date(), date(1926, 11, 21));
        // With '+': 100 years earlier still.
        let plus = |s: &str| format!("{}+{}", &s[..6], &s[6..]);
        assert_eq!(p(&plus(&dec)).unwrap().birth_date(), date(1826, 12, 15));
        assert_eq!(p(&plus(&nov20)).unwrap().birth_date(), date(1926, 11, 20));
        assert_eq!(p(&plus(&nov21)).unwrap().birth_date(), date(1826, 11, 21));
        // A year after 2026 in the same century (e.g. 27) is 1927.
        assert_eq!(
            p(&with_check("270101123")).unwrap().birth_date(),
            date(1927, 1, 1)
        );
    }

    #[test]
    fn twelve_digit_form_keeps_its_century() {
        // In the future relative to the reference: still accepted as written.
        let s = format!("20{}", with_check("301212123"));
        assert_eq!(p(&s).unwrap().birth_date(), date(2030, 12, 12));
        let s = format!("18{}", with_check("991212123"));
        assert_eq!(p(&s).unwrap().birth_date(), date(1899, 12, 12));
    }

    #[test]
    fn february_29_century_choice() {
        let leap = with_check("000229123");
        // 2000 is a leap year: 2000-02-29.
        assert_eq!(p(&leap).unwrap().birth_date(), date(2000, 2, 29));
        // Reference before 2000-02-29: 1900-02-29 does not exist, 1800 neither -> invalid.
        assert!(Personnummer::parse(&leap, date(2000, 1, 15)).is_err());
        // With '+': 1900 does not exist, 1800 neither -> invalid.
        let leap_plus = format!("000229+{}", &leap[6..]);
        assert!(p(&leap_plus).is_err());
        // 04-02-29 with '+', reference 2026: 1904 (a leap year).
        let l04 = with_check("040229123");
        let l04_plus = format!("040229+{}", &l04[6..]);
        assert_eq!(p(&l04_plus).unwrap().birth_date(), date(1904, 2, 29));
        // 2104 is not considered; 04-02-29 reference 2026 -> 2004.
        assert_eq!(p(&l04).unwrap().birth_date(), date(2004, 2, 29));
        // Reference on 28 Feb 2004: 2004-02-29 is after it, 1904-02-29 exists.
        assert_eq!(
            Personnummer::parse(&l04, date(2004, 2, 28))
                .unwrap()
                .birth_date(),
            date(1904, 2, 29)
        );
        // 29 Feb in a non-leap year of the 12-digit form.
        let s = format!("19{}", with_check("010229123"));
        assert!(p(&s).is_err());
        // 1900 with a 12-digit form: not a leap year.
        let s = format!("19{}", with_check("000229123"));
        assert_eq!(p(&s), Err(InvalidValue("personnummer date does not exist")));
        // Reference itself on 29 Feb.
        assert_eq!(
            Personnummer::parse(&leap, date(2024, 2, 29))
                .unwrap()
                .birth_date(),
            date(2000, 2, 29)
        );
    }

    #[test]
    fn samordningsnummer() {
        let a = p("19800161-3291").unwrap();
        assert!(a.is_coordination_number());
        assert_eq!(a.birth_date(), date(1980, 1, 1));
        assert_eq!(a.normalized(), "19800161-3291");
        assert_eq!(a.digits12(), "198001613291");
        assert_eq!(a.masked(), "19800161-XXXX");
        let b = p("8001613291").unwrap();
        assert_eq!(b, a);
        assert_eq!(p("800161-3291").unwrap(), a);
        // Day 91 = 31st; day 60 (= 0) and 92 are invalid.
        let d91 = with_check("800191123");
        assert_eq!(p(&d91).unwrap().birth_date(), date(1980, 1, 31));
        assert_eq!(
            p(&with_check("800192123")),
            Err(InvalidValue("personnummer day is not valid"))
        );
        assert_eq!(
            p(&with_check("800160123")),
            Err(InvalidValue("personnummer day is not valid"))
        );
        // 31 + 60 in a 30-day month does not exist.
        assert!(p(&with_check("800491123")).is_err());
        // Century rule uses the real day: 26-12-15 (written 75) -> 1926.
        let c = p(&with_check("261275123")).unwrap();
        assert_eq!(c.birth_date(), date(1926, 12, 15));
        let c = p(&with_check("261175123")).unwrap();
        assert_eq!(c.birth_date(), date(2026, 11, 15));
    }

    #[test]
    fn spaces_and_trimming() {
        let want = "19121212-1212";
        for s in [
            "  19121212-1212\n",
            "1912 1212-1212",
            "19121212 - 1212",
            "1 9 1 2 1 2 1 2 1 2 1 2",
            "\u{00A0}121212+1212\t",
            "19121212\u{2013}1212", // en dash from a word processor
        ] {
            assert_eq!(p(s).unwrap().normalized(), want, "{s:?}");
        }
    }

    #[test]
    fn invalid_values() {
        let bad = [
            ("19121212-1213", "personnummer check digit is wrong"),
            ("121212-1213", "personnummer check digit is wrong"),
            ("19121312-1212", "personnummer month is not valid"),
            ("19120012-1212", "personnummer month is not valid"),
            ("19121232-1212", "personnummer day is not valid"),
            ("19121200-1212", "personnummer day is not valid"),
            ("19121292-1212", "personnummer day is not valid"),
            ("121212-121", "personnummer must have 10 or 12 digits"),
            ("12121212121", "personnummer must have 10 or 12 digits"),
            ("121212121", "personnummer must have 10 or 12 digits"),
            ("1912121212123", "personnummer must have 10 or 12 digits"),
            ("", "personnummer is empty"),
            ("   ", "personnummer is empty"),
            (
                "19121212-12a2",
                "personnummer may only hold digits, a '-' or '+' separator and spaces",
            ),
            (
                "ÅÄÖ",
                "personnummer may only hold digits, a '-' or '+' separator and spaces",
            ),
            (
                "１２１２１２-１２１２",
                "personnummer may only hold digits, a '-' or '+' separator and spaces",
            ),
            ("1212-12-1212", "personnummer has more than one separator"),
            (
                "1212121-212",
                "personnummer separator is in the wrong place",
            ),
            (
                "19121212+1212",
                "personnummer with a four-digit year cannot use the '+' separator",
            ),
            (
                "191212-121212",
                "personnummer separator is in the wrong place",
            ),
        ];
        for (s, why) in bad {
            assert_eq!(p(s), Err(InvalidValue(why)), "{s:?}");
        }
    }

    #[test]
    fn birth_number_000_is_invalid() {
        let s = with_check("121212000");
        assert_eq!(p(&s), Err(InvalidValue("personnummer birth number is 000")));
        let s = format!("19{}", with_check("121212000"));
        assert_eq!(p(&s), Err(InvalidValue("personnummer birth number is 000")));
        // 001 is fine.
        assert!(p(&with_check("121212001")).is_ok());
    }

    #[test]
    fn display_and_debug_are_masked() {
        let a = p("19121212-1212").unwrap();
        assert_eq!(a.to_string(), "19121212-XXXX");
        let dbg = format!("{a:?}");
        assert_eq!(dbg, "Personnummer(19121212-XXXX)");
        let nested = format!("{:?} {:#?} {}", Some(a), Ok::<_, ()>(a), a);
        assert!(!nested.contains("1212121212"), "{nested}");
        assert!(!nested.contains("-1212"), "{nested}");
        let c = p("19800161-3291").unwrap();
        let out = format!("{c} {c:?}");
        assert!(!out.contains("3291"), "{out}");
    }

    #[test]
    fn errors_never_carry_the_value() {
        for s in ["19121212-1213", "19121312-1212", "121212000x"] {
            let e = p(s).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains("1212"), "{text}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "+",
            "-",
            "+-",
            "++++",
            "0",
            "0000000000",
            "000000000000",
            "999999999999",
            "99999999-9999",
            "\u{0}\u{1}",
            "𝟙𝟚",
            "12121212121212121212121212",
        ];
        for s in inputs {
            let _ = p(s);
            let _ = Personnummer::parse(s, NaiveDate::MIN);
            let _ = Personnummer::parse(s, NaiveDate::MAX);
        }
        let _ = Personnummer::parse("1212121212", NaiveDate::MIN);
        let _ = Personnummer::parse("121212+1212", NaiveDate::MAX);
    }
}
