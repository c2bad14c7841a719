//! Contact values: e-mail address and Swedish mobile number.

use std::fmt;
use std::str::FromStr;

use super::text::is_dash;
use super::InvalidValue;

/// One valid e-mail address, with the domain lower-cased and the local part kept as written.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Characters allowed in a local part besides ASCII letters, digits and dots (RFC 5322 atext).
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

impl Email {
    /// Parses one address. Surrounding white space, `<…>` brackets and a `mailto:` prefix are
    /// removed. The local part is RFC 5322 dot-atom text (no quoted strings); the domain has at
    /// least two labels of ASCII letters, digits and hyphens, and a top-level label of at least
    /// two letters.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let mut s = s.trim();
        // `<mailto:a@b.se>` and `mailto:<a@b.se>` both occur; peel at most twice.
        for _ in 0..2 {
            if let Some(inner) = s.strip_prefix('<').and_then(|x| x.strip_suffix('>')) {
                s = inner.trim();
            }
            if let Some(rest) = strip_prefix_ignore_ascii_case(s, "mailto:") {
                s = rest.trim();
            }
        }
        if s.is_empty() {
            return Err(InvalidValue("e-mail address is empty"));
        }
        let ats = s.matches('@').count();
        if ats > 1 || s.contains([',', ';']) {
            return Err(InvalidValue("e-mail field must hold exactly one address"));
        }
        if ats == 0 {
            return Err(InvalidValue("e-mail address has no @"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(InvalidValue("e-mail address may not contain spaces"));
        }
        let (local, domain) = s
            .split_once('@')
            .ok_or(InvalidValue("e-mail address has no @"))?;
        check_local(local)?;
        let domain = domain.to_ascii_lowercase();
        check_domain(&domain)?;
        Ok(Email(format!("{local}@{domain}")))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn check_local(local: &str) -> Result<(), InvalidValue> {
    if local.is_empty() {
        return Err(InvalidValue("e-mail address has nothing before the @"));
    }
    if local.len() > 64 {
        return Err(InvalidValue("e-mail address local part is too long"));
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c))
    {
        return Err(InvalidValue(
            "e-mail address has a character that is not allowed before the @",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidValue(
            "e-mail address has a misplaced dot before the @",
        ));
    }
    Ok(())
}

/// `domain` is already lower-cased.
fn check_domain(domain: &str) -> Result<(), InvalidValue> {
    if domain.is_empty() {
        return Err(InvalidValue("e-mail address has no domain"));
    }
    if domain.len() > 253 {
        return Err(InvalidValue("e-mail address domain is too long"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(InvalidValue(
            "e-mail address domain needs at least two parts",
        ));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(InvalidValue(
                "e-mail address domain has an empty or too long part",
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(InvalidValue(
                "e-mail address domain may only hold letters a-z, digits, hyphens and dots",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(InvalidValue(
                "e-mail address domain part starts or ends with a hyphen",
            ));
        }
    }
    let tld = labels.last().copied().unwrap_or("");
    if tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(InvalidValue(
            "e-mail address top-level domain must be at least two letters",
        ));
    }
    Ok(())
}

impl FromStr for Email {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A Swedish mobile number, normalised to E.164 `+467XXXXXXXX`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mobile(String);

impl Mobile {
    /// Parses `07X…` (10 digits), `+467X…` or `00467X…` (+46 then 9 digits starting with 7).
    /// Spaces, hyphens, dots, slashes and parentheses may separate the digits; after the
    /// country code a trunk `0` is dropped, whether written `(0)` or not (`+46 (0)70…`,
    /// `+46 070…`). Land lines (`08-…`, `031-…`) are refused.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InvalidValue("mobile number is empty"));
        }
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
            } else if c == '+' {
                if plus || !digits.is_empty() {
                    return Err(InvalidValue(
                        "mobile number has a '+' that is not at the start",
                    ));
                }
                plus = true;
            } else if c.is_whitespace() || is_dash(c) || matches!(c, '.' | '/' | '(' | ')') {
                continue;
            } else {
                return Err(InvalidValue(
                    "mobile number may only hold digits, '+', spaces, hyphens, dots, slashes and parentheses",
                ));
            }
        }
        if digits.is_empty() {
            return Err(InvalidValue("mobile number has no digits"));
        }
        let international = if plus {
            Some(digits.as_str())
        } else {
            digits.strip_prefix("00")
        };
        let subscriber = match international {
            Some(intl) => {
                let after_cc = intl
                    .strip_prefix("46")
                    .ok_or(InvalidValue("mobile number must be Swedish (+46)"))?;
                // A trunk zero after the country code: `+46 (0)70…` or `+46 070…`.
                after_cc.strip_prefix('0').unwrap_or(after_cc)
            }
            None => digits.strip_prefix('0').ok_or(InvalidValue(
                "mobile number must start with 07, +467 or 00467",
            ))?,
        };
        if !subscriber.starts_with('7') {
            return Err(InvalidValue(
                "not a Swedish mobile number (must start with 07 or +467)",
            ));
        }
        if subscriber.len() != 9 {
            return Err(InvalidValue(
                "mobile number must have 10 digits (07X XXX XX XX) or +46 and 9 digits",
            ));
        }
        Ok(Mobile(format!("+46{subscriber}")))
    }

    /// The E.164 form `+467XXXXXXXX`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Mobile {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Mobile {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalisation() {
        let cases = [
            ("anna.svensson@vgregion.se", "anna.svensson@vgregion.se"),
            (
                "  Anna.Svensson@VGRegion.SE \n",
                "Anna.Svensson@vgregion.se",
            ),
            ("<anna@Example.COM>", "anna@example.com"),
            ("mailto:anna@example.com", "anna@example.com"),
            ("MAILTO:Anna@Example.com", "Anna@example.com"),
            ("<mailto:anna@example.com>", "anna@example.com"),
            ("mailto:<anna@example.com>", "anna@example.com"),
            ("< anna@example.com >", "anna@example.com"),
            (
                "first.last+tag@sub.domain-x.example.se",
                "first.last+tag@sub.domain-x.example.se",
            ),
            ("o'brien_{x}=1@a1.se", "o'brien_{x}=1@a1.se"),
            ("x@123.se", "x@123.se"),
        ];
        for (input, want) in cases {
            let e = Email::parse(input).unwrap();
            assert_eq!(e.as_str(), want, "{input:?}");
            assert_eq!(e.to_string(), want);
        }
        assert_eq!(
            format!("{:?}", Email::parse("a@b.se").unwrap()),
            "Email(a@b.se)"
        );
        assert!("a@b.se".parse::<Email>().is_ok());
    }

    #[test]
    fn email_invalid() {
        let bad = [
            ("", "e-mail address is empty"),
            ("<>", "e-mail address is empty"),
            ("mailto:", "e-mail address is empty"),
            ("anna.example.com", "e-mail address has no @"),
            (
                "a@b.se, c@d.se",
                "e-mail field must hold exactly one address",
            ),
            (
                "a@b.se c@d.se",
                "e-mail field must hold exactly one address",
            ),
            (
                "a@b.se;c@d.se",
                "e-mail field must hold exactly one address",
            ),
            ("a@b@c.se", "e-mail field must hold exactly one address"),
            (
                "anna svensson@b.se",
                "e-mail address may not contain spaces",
            ),
            ("anna@b .se", "e-mail address may not contain spaces"),
            ("@b.se", "e-mail address has nothing before the @"),
            (
                ".anna@b.se",
                "e-mail address has a misplaced dot before the @",
            ),
            (
                "anna.@b.se",
                "e-mail address has a misplaced dot before the @",
            ),
            (
                "an..na@b.se",
                "e-mail address has a misplaced dot before the @",
            ),
            (
                "\"anna\"@b.se",
                "e-mail address has a character that is not allowed before the @",
            ),
            (
                "åsa@b.se",
                "e-mail address has a character that is not allowed before the @",
            ),
            ("anna@", "e-mail address has no domain"),
            (
                "anna@localhost",
                "e-mail address domain needs at least two parts",
            ),
            (
                "anna@b..se",
                "e-mail address domain has an empty or too long part",
            ),
            (
                "anna@b.se.",
                "e-mail address domain has an empty or too long part",
            ),
            (
                "anna@.b.se",
                "e-mail address domain has an empty or too long part",
            ),
            (
                "anna@b_c.se",
                "e-mail address domain may only hold letters a-z, digits, hyphens and dots",
            ),
            (
                "anna@vård.se",
                "e-mail address domain may only hold letters a-z, digits, hyphens and dots",
            ),
            (
                "anna@-b.se",
                "e-mail address domain part starts or ends with a hyphen",
            ),
            (
                "anna@b-.se",
                "e-mail address domain part starts or ends with a hyphen",
            ),
            (
                "anna@b.s",
                "e-mail address top-level domain must be at least two letters",
            ),
            (
                "anna@b.s3",
                "e-mail address top-level domain must be at least two letters",
            ),
            (
                "anna@10.0.0.1",
                "e-mail address top-level domain must be at least two letters",
            ),
        ];
        for (s, why) in bad {
            assert_eq!(Email::parse(s), Err(InvalidValue(why)), "{s:?}");
        }
        let long_local = format!("{}@b.se", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long_label = format!("a@{}.se", "b".repeat(64));
        assert!(Email::parse(&long_label).is_err());
    }

    #[test]
    fn mobile_variants() {
        let want = "+46701234567";
        for s in [
            "0701234567",
            "070-123 45 67",
            "070 123 45 67",
            "070-1234567",
            "070.123.45.67",
            "070/123 45 67",
            "(070) 123 45 67",
            "+46701234567",
            "+46 70 123 45 67",
            "+46 (0)70-123 45 67",
            "+46(0)701234567",
            "+46 070 123 45 67",
            "0046701234567",
            "0046 70 123 45 67",
            "0046 (0)70 123 45 67",
            "  070\u{2013}123\u{00A0}45\u{00A0}67\n",
        ] {
            let m = Mobile::parse(s).unwrap();
            assert_eq!(m.as_str(), want, "{s:?}");
        }
        assert_eq!(
            Mobile::parse("076-999 00 11").unwrap().as_str(),
            "+46769990011"
        );
        assert_eq!(
            Mobile::parse("0739 12 34 56").unwrap().to_string(),
            "+46739123456"
        );
        assert_eq!(
            format!("{:?}", Mobile::parse("0701234567").unwrap()),
            "Mobile(+46701234567)"
        );
        assert!("0701234567".parse::<Mobile>().is_ok());
    }

    #[test]
    fn mobile_invalid() {
        let bad = [
            ("", "mobile number is empty"),
            ("--", "mobile number has no digits"),
            ("08-123 456 78", "not a Swedish mobile number (must start with 07 or +467)"),
            ("031-123 45 67", "not a Swedish mobile number (must start with 07 or +467)"),
            ("+46 8 123 456 78", "not a Swedish mobile number (must start with 07 or +467)"),
            ("+46 31 123 45 67", "not a Swedish mobile number (must start with 07 or +467)"),
            ("070-123 45 6", "mobile number must have 10 digits (07X XXX XX XX) or +46 and 9 digits"),
            ("070-123 45 678", "mobile number must have 10 digits (07X XXX XX XX) or +46 and 9 digits"),
            ("+46 70 123 45 6", "mobile number must have 10 digits (07X XXX XX XX) or +46 and 9 digits"),
            ("+47 912 34 567", "mobile number must be Swedish (+46)"),
            ("0047 912 34 567", "mobile number must be Swedish (+46)"),
            ("701234567", "mobile number must start with 07, +467 or 00467"),
            ("46701234567", "mobile number must start with 07, +467 or 00467"),
            ("070+1234567", "mobile number has a '+' that is not at the start"),
            ("++46701234567", "mobile number has a '+' that is not at the start"),
            ("070-123 45 67 ank. 12", "mobile number may only hold digits, '+', spaces, hyphens, dots, slashes and parentheses"),
            ("O70-1234567", "mobile number may only hold digits, '+', spaces, hyphens, dots, slashes and parentheses"),
        ];
        for (s, why) in bad {
            assert_eq!(Mobile::parse(s), Err(InvalidValue(why)), "{s:?}");
        }
    }
}
