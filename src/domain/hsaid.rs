//! HSA-id: the identity of a unit, provider or person in the national HSA directory.

use std::fmt;
use std::str::FromStr;

use super::InvalidValue;

/// Longest HSA-id allowed.
const MAX_LEN: usize = 31;

/// A valid HSA-id: `SE` + 10 digits + `-` + one or more of `[A-Za-z0-9]`, at most 31
/// characters. The 10 digits (the issuer's organisation number) are not checked further.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsaId(String);

impl HsaId {
    /// Parses an HSA-id. Surrounding white space is trimmed; the `SE` prefix is accepted in any
    /// case and upper-cased; the rest is kept as written.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InvalidValue("HSA-id is empty"));
        }
        if !s.is_ascii() || s.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(InvalidValue(
                "HSA-id may only hold letters A-Z, digits and one hyphen, with no spaces",
            ));
        }
        // ASCII from here on: byte length is character count, and any split is at a char boundary.
        if s.len() > MAX_LEN {
            return Err(InvalidValue("HSA-id is longer than 31 characters"));
        }
        let (prefix, rest) = s
            .split_at_checked(2)
            .ok_or(InvalidValue("HSA-id must start with SE"))?;
        if !prefix.eq_ignore_ascii_case("SE") {
            return Err(InvalidValue("HSA-id must start with SE"));
        }
        let (org, suffix) = rest.split_once('-').ok_or(InvalidValue(
            "HSA-id must have a hyphen after the ten digits",
        ))?;
        if org.len() != 10 || !org.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue("HSA-id must have ten digits after SE"));
        }
        if suffix.is_empty() {
            return Err(InvalidValue("HSA-id has nothing after the hyphen"));
        }
        if !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(InvalidValue(
                "HSA-id may only hold letters A-Z and digits after the hyphen",
            ));
        }
        Ok(HsaId(format!("SE{rest}")))
    }

    /// The normalised HSA-id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HsaId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for HsaId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HsaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for HsaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HsaId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        let h = HsaId::parse("SE2321000131-E000000000101").unwrap();
        assert_eq!(h.as_str(), "SE2321000131-E000000000101");
        assert_eq!(h.to_string(), "SE2321000131-E000000000101");
        assert_eq!(format!("{h:?}"), "HsaId(SE2321000131-E000000000101)");
    }

    #[test]
    fn trimmed_and_prefix_uppercased_rest_kept() {
        assert_eq!(
            HsaId::parse("  se2321000131-e000000000101\t")
                .unwrap()
                .as_str(),
            "SE2321000131-e000000000101"
        );
        assert_eq!(
            HsaId::parse("Se2321000131-Ab1").unwrap().as_str(),
            "SE2321000131-Ab1"
        );
        assert_eq!(
            "SE2321000131-1".parse::<HsaId>().unwrap().as_str(),
            "SE2321000131-1"
        );
    }

    #[test]
    fn length_limit() {
        // 2 + 10 + 1 = 13 characters before the suffix; 18 more make 31.
        let ok = format!("SE2321000131-{}", "A".repeat(18));
        assert_eq!(ok.len(), 31);
        assert!(HsaId::parse(&ok).is_ok());
        let too_long = format!("SE2321000131-{}", "A".repeat(19));
        assert_eq!(
            HsaId::parse(&too_long),
            Err(InvalidValue("HSA-id is longer than 31 characters"))
        );
        // Surrounding white space does not count.
        assert!(HsaId::parse(&format!("  {ok}  ")).is_ok());
    }

    #[test]
    fn invalid_values() {
        let bad = [
            (
                "SE2321000131E000000000101",
                "HSA-id must have a hyphen after the ten digits",
            ),
            ("SE232100013-E0001", "HSA-id must have ten digits after SE"),
            (
                "SE23210001311-E0001",
                "HSA-id must have ten digits after SE",
            ),
            ("SE232100013X-E0001", "HSA-id must have ten digits after SE"),
            ("NO2321000131-E0001", "HSA-id must start with SE"),
            ("2321000131-E0001", "HSA-id must start with SE"),
            ("S", "HSA-id must start with SE"),
            ("SE2321000131-", "HSA-id has nothing after the hyphen"),
            (
                "SE2321000131-E00-01",
                "HSA-id may only hold letters A-Z and digits after the hyphen",
            ),
            (
                "SE2321000131-E_01",
                "HSA-id may only hold letters A-Z and digits after the hyphen",
            ),
            (
                "SE2321000131-E 0001",
                "HSA-id may only hold letters A-Z, digits and one hyphen, with no spaces",
            ),
            (
                "SE 2321000131-E0001",
                "HSA-id may only hold letters A-Z, digits and one hyphen, with no spaces",
            ),
            (
                "SE2321000131-Å0001",
                "HSA-id may only hold letters A-Z, digits and one hyphen, with no spaces",
            ),
            (
                "ÅÅ",
                "HSA-id may only hold letters A-Z, digits and one hyphen, with no spaces",
            ),
            ("", "HSA-id is empty"),
            (" \n ", "HSA-id is empty"),
        ];
        for (s, why) in bad {
            assert_eq!(HsaId::parse(s), Err(InvalidValue(why)), "{s:?}");
        }
    }
}
