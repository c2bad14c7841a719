//! Swedish organisation number, and the care-provider id that may be one or a personnummer.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use super::luhn::luhn_valid;
use super::personnummer::Personnummer;
use super::text::is_dash;
use super::InvalidValue;

/// A valid Swedish organisation number (10 digits, digits 3–4 ≥ 20, Luhn).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgNr {
    /// The 10 digits as ASCII.
    digits: [u8; 10],
}

impl OrgNr {
    /// Parses `NNNNNN-NNNN` or `NNNNNNNNNN`, optionally prefixed with `16` (12 digits,
    /// `16NNNNNN-NNNN` or `16NNNNNNNNNN`). White space anywhere is ignored; a dash-like
    /// character counts as `-`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let mut digits: Vec<u8> = Vec::with_capacity(12);
        let mut dash_at: Option<usize> = None;
        let mut any = false;
        for c in s.chars() {
            if c.is_whitespace() {
                continue;
            }
            any = true;
            if c.is_ascii_digit() {
                // ASCII, so the char fits a byte.
                digits.push(c as u8);
            } else if is_dash(c) {
                if dash_at.is_some() {
                    return Err(InvalidValue("organisation number has more than one hyphen"));
                }
                dash_at = Some(digits.len());
            } else {
                return Err(InvalidValue(
                    "organisation number may only hold digits, a hyphen and spaces",
                ));
            }
        }
        if !any {
            return Err(InvalidValue("organisation number is empty"));
        }
        let ten: &[u8] = match (digits.len(), dash_at) {
            (10, None) | (10, Some(6)) => &digits,
            (12, None) | (12, Some(8)) => match digits.split_first_chunk::<2>() {
                Some((b"16", rest)) => rest,
                _ => {
                    return Err(InvalidValue(
                        "organisation number with 12 digits must start with 16",
                    ))
                }
            },
            (10 | 12, Some(_)) => {
                return Err(InvalidValue(
                    "organisation number hyphen is in the wrong place",
                ))
            }
            _ => return Err(InvalidValue("organisation number must have 10 digits")),
        };
        let digits: [u8; 10] = ten
            .try_into()
            .map_err(|_| InvalidValue("organisation number must have 10 digits"))?;
        let group = u32::from(digits[2] - b'0') * 10 + u32::from(digits[3] - b'0');
        if group < 20 {
            return Err(InvalidValue(
                "organisation number digits 3-4 must be at least 20",
            ));
        }
        if !luhn_valid(std::str::from_utf8(&digits).unwrap_or("")) {
            return Err(InvalidValue("organisation number check digit is wrong"));
        }
        Ok(OrgNr { digits })
    }

    /// `NNNNNN-NNNN`.
    pub fn normalized(&self) -> String {
        let d = self.digits10();
        match (d.get(..6), d.get(6..)) {
            (Some(a), Some(b)) => format!("{a}-{b}"),
            _ => d,
        }
    }

    /// The 10 digits, no hyphen (the form of KIV's `orgNo`).
    pub fn digits10(&self) -> String {
        self.digits.iter().map(|&b| char::from(b)).collect()
    }
}

impl FromStr for OrgNr {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for OrgNr {
    /// `NNNNNN-NNNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl fmt::Debug for OrgNr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgNr({})", self.normalized())
    }
}

/// The id of a care provider: an organisation number, or (sole traders) the owner's personnummer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProviderId {
    Org(OrgNr),
    Person(Personnummer),
}

impl ProviderId {
    /// Tries an organisation number first, then a personnummer (century chosen against
    /// `reference`, see [`Personnummer::parse`]).
    pub fn parse(s: &str, reference: NaiveDate) -> Result<Self, InvalidValue> {
        if let Ok(org) = OrgNr::parse(s) {
            return Ok(ProviderId::Org(org));
        }
        Personnummer::parse(s, reference)
            .map(ProviderId::Person)
            .map_err(|_| {
                InvalidValue("neither a valid organisation number nor a valid personnummer")
            })
    }

    /// `NNNNNN-NNNN` for an organisation, `YYYYMMDD-NNNC` for a person (full number: this
    /// is the value of the JSON field; do not log it).
    pub fn normalized(&self) -> String {
        match self {
            ProviderId::Org(o) => o.normalized(),
            ProviderId::Person(p) => p.normalized(),
        }
    }

    /// The key of the provider register: 10 digits for an organisation, 12 for a person.
    pub fn register_key(&self) -> String {
        match self {
            ProviderId::Org(o) => o.digits10(),
            ProviderId::Person(p) => p.digits12(),
        }
    }
}

impl fmt::Display for ProviderId {
    /// The organisation number, or the masked personnummer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderId::Org(o) => fmt::Display::fmt(o, f),
            ProviderId::Person(p) => fmt::Display::fmt(p, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::luhn::luhn_check_digit;

    fn reference() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 20).expect("date")
    }

    #[test]
    fn spec_examples() {
        let a = OrgNr::parse("232100-0131").unwrap();
        assert_eq!(a.normalized(), "232100-0131");
        assert_eq!(a.digits10(), "2321000131");
        assert_eq!(a.to_string(), "232100-0131");
        assert_eq!(format!("{a:?}"), "OrgNr(232100-0131)");
        assert_eq!(
            OrgNr::parse("556016-0680").unwrap().digits10(),
            "5560160680"
        );
        assert_eq!(OrgNr::parse("162321000131").unwrap(), a);
    }

    #[test]
    fn accepted_spellings() {
        for s in [
            "2321000131",
            " 232100-0131 ",
            "232 100-0131",
            "232100 - 0131",
            "16232100-0131",
            "16 232100-0131",
            "232100\u{2013}0131",
        ] {
            assert_eq!(
                OrgNr::parse(s).unwrap().normalized(),
                "232100-0131",
                "{s:?}"
            );
        }
        assert_eq!(
            "5560160680".parse::<OrgNr>().unwrap().normalized(),
            "556016-0680"
        );
    }

    #[test]
    fn month_digits_below_20_rejected() {
        // A personnummer-shaped number with a correct Luhn digit is not an organisation number.
        assert_eq!(
            OrgNr::parse("121212-1212"),
            Err(InvalidValue(
                "organisation number digits 3-4 must be at least 20"
            ))
        );
        let body = "551916068";
        let c = luhn_check_digit(body).unwrap();
        assert_eq!(
            OrgNr::parse(&format!("{body}{c}")),
            Err(InvalidValue(
                "organisation number digits 3-4 must be at least 20"
            ))
        );
        // Exactly 20 is fine.
        let body = "552016068";
        let c = luhn_check_digit(body).unwrap();
        assert!(OrgNr::parse(&format!("{body}{c}")).is_ok());
    }

    #[test]
    fn invalid_values() {
        let bad = [
            ("232100-0132", "organisation number check digit is wrong"),
            ("556016-0681", "organisation number check digit is wrong"),
            (
                "172321000131",
                "organisation number with 12 digits must start with 16",
            ),
            (
                "192321000131",
                "organisation number with 12 digits must start with 16",
            ),
            (
                "23210-00131",
                "organisation number hyphen is in the wrong place",
            ),
            (
                "2321-00-0131",
                "organisation number has more than one hyphen",
            ),
            ("232100-013", "organisation number must have 10 digits"),
            ("232100-01311", "organisation number must have 10 digits"),
            (
                "SE232100-0131",
                "organisation number may only hold digits, a hyphen and spaces",
            ),
            ("", "organisation number is empty"),
            ("-", "organisation number must have 10 digits"),
        ];
        for (s, why) in bad {
            assert_eq!(OrgNr::parse(s), Err(InvalidValue(why)), "{s:?}");
        }
    }

    #[test]
    fn provider_id_org() {
        let p = ProviderId::parse("232100-0131", reference()).unwrap();
        assert!(matches!(p, ProviderId::Org(_)));
        assert_eq!(p.normalized(), "232100-0131");
        assert_eq!(p.register_key(), "2321000131");
        assert_eq!(p.to_string(), "232100-0131");
        let p = ProviderId::parse("162321000131", reference()).unwrap();
        assert_eq!(p.register_key(), "2321000131");
    }

    #[test]
    fn provider_id_sole_trader_personnummer() {
        for s in ["19121212-1212", "121212+1212", "191212121212"] {
            let p = ProviderId::parse(s, reference()).unwrap();
            assert!(matches!(p, ProviderId::Person(_)), "{s}");
            assert_eq!(p.normalized(), "19121212-1212");
            assert_eq!(p.register_key(), "191212121212");
            assert_eq!(p.to_string(), "19121212-XXXX");
            assert!(!format!("{p:?}").contains("1212-1212"));
            assert!(!format!("{p:?}").contains("XXXX1212"));
        }
        // A short form takes the century from the reference date.
        let p = ProviderId::parse("1212121212", reference()).unwrap();
        assert_eq!(p.normalized(), "20121212-1212");
        // A samordningsnummer is a personnummer too.
        let p = ProviderId::parse("8001613291", reference()).unwrap();
        assert_eq!(p.register_key(), "198001613291");
    }

    #[test]
    fn provider_id_invalid() {
        let e = Err(InvalidValue(
            "neither a valid organisation number nor a valid personnummer",
        ));
        for s in ["232100-0132", "19121212-1213", "", "abc", "12345"] {
            assert_eq!(ProviderId::parse(s, reference()), e, "{s:?}");
        }
    }
}
