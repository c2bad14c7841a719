//! SITHS card number (kortnummer), ISO/IEC 7812 layout.

use std::fmt;
use std::str::FromStr;

use super::luhn::luhn_valid;
use super::text::is_dash;
use super::InvalidValue;

/// Number of digits of a SITHS card number.
const LEN: usize = 19;

/// A SITHS card number: 19 digits starting `9752` (9 = national issuer, 752 = Sweden), then a
/// 4-digit issuer number, a card-type digit, two form-factor digits and eight serial digits.
///
/// The last digit is believed to be a Luhn check digit, but real numbers fail it: a failing
/// check does not stop parsing; see [`CardNumber::checksum_ok`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardNumber {
    /// The 19 digits as ASCII.
    digits: [u8; LEN],
}

impl CardNumber {
    /// Parses a card number written with or without spaces; hyphens between digit groups are
    /// also accepted. Surrounding white space is trimmed.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InvalidValue("card number is empty"));
        }
        let mut digits: Vec<u8> = Vec::with_capacity(LEN);
        let mut prev_dash = true; // a hyphen may not come first
        for c in s.chars() {
            if c.is_ascii_digit() {
                // ASCII, so the char fits a byte.
                digits.push(c as u8);
                prev_dash = false;
            } else if c.is_whitespace() {
                continue;
            } else if is_dash(c) {
                if prev_dash {
                    return Err(InvalidValue(
                        "card number hyphen is not between digit groups",
                    ));
                }
                prev_dash = true;
            } else {
                return Err(InvalidValue(
                    "card number may only hold digits, spaces and hyphens",
                ));
            }
        }
        if prev_dash {
            return Err(InvalidValue(
                "card number hyphen is not between digit groups",
            ));
        }
        let digits: [u8; LEN] = digits
            .try_into()
            .map_err(|_| InvalidValue("card number must have 19 digits"))?;
        if !digits.starts_with(b"9752") {
            return Err(InvalidValue("card number must start with 9752"));
        }
        Ok(CardNumber { digits })
    }

    /// The 19 digits, no spaces.
    pub fn normalized(&self) -> String {
        self.digits.iter().map(|&b| char::from(b)).collect()
    }

    /// True when the last digit is a correct Luhn check digit over all 19 digits. A failure is
    /// only a warning (`card_number_checksum`).
    pub fn checksum_ok(&self) -> bool {
        luhn_valid(&self.normalized())
    }

    /// The 4-digit issuer number (the region's is `2679`).
    pub fn issuer(&self) -> String {
        self.normalized().chars().skip(4).take(4).collect()
    }
}

impl FromStr for CardNumber {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.normalized())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::luhn::luhn_check_digit;

    /// A valid card number of the region: `9752 2679 0 01` + `serial` (7 digits) + a Luhn
    /// check digit. 4 + 4 + 1 + 2 + 8 = 19, so the check digit is the last of the eight
    /// "serial" digits of the layout.
    pub(crate) fn example_card(serial: &str) -> String {
        let body = format!("975226790 01{serial}").replace(' ', "");
        assert_eq!(body.len(), 18, "serial must have 7 digits");
        let c = luhn_check_digit(&body).expect("digits");
        format!("{body}{c}")
    }

    #[test]
    fn valid_with_checksum() {
        let n = example_card("0001234");
        let c = CardNumber::parse(&n).unwrap();
        assert_eq!(c.normalized(), n);
        assert!(c.checksum_ok());
        assert_eq!(c.issuer(), "2679");
        assert_eq!(c.to_string(), n);
        assert_eq!(format!("{c:?}"), format!("CardNumber({n})"));
    }

    #[test]
    fn spacings() {
        let n = example_card("1234567");
        let spaced = format!(
            "{} {} {} {} {}",
            &n[..4],
            &n[4..8],
            &n[8..12],
            &n[12..16],
            &n[16..]
        );
        let dashed = spaced.replace(' ', "-");
        let odd = format!(" {}\u{00A0}{} - {}\t", &n[..4], &n[4..10], &n[10..]);
        for s in [spaced, dashed, odd, format!("  {n}\n")] {
            assert_eq!(CardNumber::parse(&s).unwrap().normalized(), n, "{s:?}");
        }
        assert!(n.parse::<CardNumber>().is_ok());
    }

    #[test]
    fn checksum_failure_still_parses() {
        let n = example_card("0001234");
        let last = n.chars().last().and_then(|c| c.to_digit(10)).unwrap();
        let wrong = format!("{}{}", &n[..18], (last + 1) % 10);
        let c = CardNumber::parse(&wrong).unwrap();
        assert!(!c.checksum_ok());
        assert_eq!(c.normalized(), wrong);
    }

    #[test]
    fn wrong_prefix() {
        let n = example_card("0001234");
        let other = format!("9753{}", &n[4..]);
        assert_eq!(
            CardNumber::parse(&other),
            Err(InvalidValue("card number must start with 9752"))
        );
        assert_eq!(
            CardNumber::parse("1234567890123456789"),
            Err(InvalidValue("card number must start with 9752"))
        );
    }

    #[test]
    fn wrong_length() {
        let n = example_card("0001234");
        let e = Err(InvalidValue("card number must have 19 digits"));
        assert_eq!(CardNumber::parse(&n[..18]), e); // 18 digits
        assert_eq!(CardNumber::parse(&format!("{n}0")), e); // 20 digits
        assert_eq!(CardNumber::parse("9752"), e);
    }

    #[test]
    fn invalid_characters() {
        let n = example_card("0001234");
        assert_eq!(
            CardNumber::parse(&format!("{}O{}", &n[..10], &n[11..])),
            Err(InvalidValue(
                "card number may only hold digits, spaces and hyphens"
            ))
        );
        assert_eq!(
            CardNumber::parse(""),
            Err(InvalidValue("card number is empty"))
        );
        let e = Err(InvalidValue(
            "card number hyphen is not between digit groups",
        ));
        assert_eq!(CardNumber::parse(&format!("-{n}")), e);
        assert_eq!(CardNumber::parse(&format!("{n}-")), e);
        assert_eq!(CardNumber::parse(&format!("{}--{}", &n[..4], &n[4..])), e);
        assert_eq!(CardNumber::parse("-"), e);
    }
}
