//! A reader for LDIF content files (RFC 2849), as used for the KIV snapshot.
//!
//! Supported: an optional `version: 1` line, `#` comments (also folded ones),
//! folded lines (a line that starts with one space continues the line before;
//! exactly that one space is removed), `attr: value`, `attr:: base64` (decoded
//! as UTF-8), raw UTF-8 values (which some exports write although RFC 2849
//! asks for base64), `dn::` in base64, CRLF line endings, a leading UTF-8 BOM,
//! and records separated by one or more blank lines.
//!
//! Not supported, reported as errors: `attr:< URL` values and change records
//! (`changetype:`, `control:`).
//!
//! Attribute names are lower-cased and their options are stripped
//! (`cn;lang-sv` becomes `cn`). Trailing spaces of plain values are trimmed;
//! base64 values are kept exactly as decoded (that is what base64 is for).
//!
//! Error messages carry the 1-based line number and at most an attribute
//! name, never a value, so they never contain personal data.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// One LDIF record: its DN and its attribute values in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifEntry {
    /// The distinguished name, as written (base64 decoded when `dn::`).
    pub dn: String,
    /// `(name, value)` pairs; names lower-cased, options stripped.
    pub attrs: Vec<(String, String)>,
}

impl LdifEntry {
    /// The first value of the attribute `name` (matched ignoring case and
    /// options, so `get("CN;lang-sv")` is `get("cn")`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// All values of the attribute `name`, in file order (matched ignoring
    /// case and options).
    pub fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let wanted = normalize_attr_name(name);
        self.attrs
            .iter()
            .filter(move |(n, _)| *n == wanted)
            .map(|(_, v)| v.as_str())
    }
}

/// What is wrong with an LDIF file, and on which line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LDIF line {line}: {kind}")]
pub struct LdifError {
    /// 1-based line number (of the first physical line of a folded line).
    pub line: usize,
    /// What is wrong.
    pub kind: LdifErrorKind,
}

/// The kinds of LDIF errors. Attribute names in them are names as written in
/// the file (already checked to consist only of name characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdifErrorKind {
    #[error("continuation line (starting with a space) has no line to continue")]
    OrphanContinuation,
    #[error("expected `attribute: value`")]
    MissingColon,
    #[error("invalid attribute name")]
    InvalidAttributeName,
    #[error("record does not start with `dn:`")]
    MissingDn,
    #[error("a second `dn:` inside a record (records must be separated by a blank line)")]
    DnInsideRecord,
    #[error("invalid base64 in the value of `{0}`")]
    InvalidBase64(String),
    #[error("the base64 value of `{0}` is not valid UTF-8")]
    InvalidUtf8(String),
    #[error("the file is not valid UTF-8")]
    FileNotUtf8,
    #[error("URL values (`{0}:<`) are not supported")]
    UrlValue(String),
    #[error(
        "change records (`changetype:`/`control:`) are not supported; expected a content file"
    )]
    ChangeRecord,
    #[error("unsupported LDIF version (only `version: 1` is supported)")]
    UnsupportedVersion,
}

impl LdifError {
    fn new(line: usize, kind: LdifErrorKind) -> Self {
        LdifError { line, kind }
    }
}

/// Parses an LDIF content file into its entries, in file order.
pub fn parse_ldif(text: &str) -> Result<Vec<LdifEntry>, LdifError> {
    let items = unfold(text)?;
    let mut entries = Vec::new();
    let mut record: Vec<(usize, String)> = Vec::new();
    let mut first_record = true;
    for item in items {
        match item {
            Item::Line(no, line) => record.push((no, line)),
            Item::Blank => {
                if !record.is_empty() {
                    if let Some(entry) = parse_record(&record, first_record)? {
                        entries.push(entry);
                    }
                    first_record = false;
                    record.clear();
                }
            }
        }
    }
    if !record.is_empty() {
        if let Some(entry) = parse_record(&record, first_record)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Finds the line of the first invalid UTF-8 byte, for callers that read a
/// file as bytes. Returns the text, or an error with the line number.
pub fn ldif_text_from_bytes(bytes: &[u8]) -> Result<&str, LdifError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        LdifError::new(line, LdifErrorKind::FileNotUtf8)
    })
}

/// A logical (unfolded, comment-free) line, or a record separator.
enum Item {
    Line(usize, String),
    Blank,
}

enum Pending {
    Nothing,
    Comment,
    Line(usize, String),
}

/// Splits into physical lines, joins folded lines, drops comments.
fn unfold(text: &str) -> Result<Vec<Item>, LdifError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut items = Vec::new();
    let mut pending = Pending::Nothing;
    for (idx, raw) in text.split('\n').enumerate() {
        let no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix(' ') {
            match &mut pending {
                Pending::Line(_, buf) => buf.push_str(rest),
                Pending::Comment => {}
                Pending::Nothing if line.trim().is_empty() => items.push(Item::Blank),
                Pending::Nothing => {
                    return Err(LdifError::new(no, LdifErrorKind::OrphanContinuation))
                }
            }
            continue;
        }
        if let Pending::Line(n, buf) = std::mem::replace(&mut pending, Pending::Nothing) {
            items.push(Item::Line(n, buf));
        }
        if line.trim().is_empty() {
            items.push(Item::Blank);
        } else if line.starts_with('#') {
            pending = Pending::Comment;
        } else {
            pending = Pending::Line(no, line.to_string());
        }
    }
    if let Pending::Line(n, buf) = pending {
        items.push(Item::Line(n, buf));
    }
    Ok(items)
}

/// A value as written after the colon(s).
enum RawValue<'a> {
    Plain(&'a str),
    Base64(&'a str),
    Url,
}

/// Splits `name: value`, `name:: base64` or `name:< url`; returns the name as
/// written (validated) and the value.
fn split_line(no: usize, line: &str) -> Result<(&str, RawValue<'_>), LdifError> {
    let Some((name, rest)) = line.split_once(':') else {
        return Err(LdifError::new(no, LdifErrorKind::MissingColon));
    };
    if !is_valid_attr_description(name) {
        return Err(LdifError::new(no, LdifErrorKind::InvalidAttributeName));
    }
    let value = if let Some(b64) = rest.strip_prefix(':') {
        RawValue::Base64(b64)
    } else if rest.starts_with('<') {
        RawValue::Url
    } else {
        RawValue::Plain(rest.trim_start_matches(' ').trim_end())
    };
    Ok((name, value))
}

/// `attr-type *(";" option)`, where both are made of letters, digits, `-`
/// (and `.` for numeric OIDs).
fn is_valid_attr_description(name: &str) -> bool {
    !name.is_empty()
        && name.split(';').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        })
}

fn normalize_attr_name(name: &str) -> String {
    name.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn base64_engine() -> GeneralPurpose {
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

fn decode_value(no: usize, name: &str, value: RawValue<'_>) -> Result<String, LdifError> {
    match value {
        RawValue::Plain(v) => Ok(v.to_string()),
        RawValue::Url => Err(LdifError::new(
            no,
            LdifErrorKind::UrlValue(name.to_string()),
        )),
        RawValue::Base64(b64) => {
            // Folding may split base64 anywhere; whitespace carries no data.
            let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64_engine()
                .decode(compact.as_bytes())
                .map_err(|_| LdifError::new(no, LdifErrorKind::InvalidBase64(name.to_string())))?;
            String::from_utf8(bytes)
                .map_err(|_| LdifError::new(no, LdifErrorKind::InvalidUtf8(name.to_string())))
        }
    }
}

/// Parses one record (its logical lines). Returns `None` for a record that
/// is only the `version:` line at the start of the file.
fn parse_record(lines: &[(usize, String)], first: bool) -> Result<Option<LdifEntry>, LdifError> {
    let mut iter = lines.iter().peekable();
    if first {
        if let Some((no, line)) = iter.peek() {
            let (name, value) = split_line(*no, line)?;
            if name.eq_ignore_ascii_case("version") {
                let v = decode_value(*no, name, value)?;
                if v.trim() != "1" {
                    return Err(LdifError::new(*no, LdifErrorKind::UnsupportedVersion));
                }
                iter.next();
                if iter.peek().is_none() {
                    return Ok(None);
                }
            }
        }
    }
    let Some((dn_no, dn_line)) = iter.next() else {
        return Ok(None);
    };
    let (name, value) = split_line(*dn_no, dn_line)?;
    if !name.eq_ignore_ascii_case("dn") {
        let kind = if is_change_attr(name) {
            LdifErrorKind::ChangeRecord
        } else {
            LdifErrorKind::MissingDn
        };
        return Err(LdifError::new(*dn_no, kind));
    }
    let dn = decode_value(*dn_no, name, value)?;
    let mut attrs = Vec::new();
    for (no, line) in iter {
        let (name, value) = split_line(*no, line)?;
        if is_change_attr(name) {
            return Err(LdifError::new(*no, LdifErrorKind::ChangeRecord));
        }
        if name.eq_ignore_ascii_case("dn") {
            return Err(LdifError::new(*no, LdifErrorKind::DnInsideRecord));
        }
        let v = decode_value(*no, name, value)?;
        attrs.push((normalize_attr_name(name), v));
    }
    Ok(Some(LdifEntry { dn, attrs }))
}

fn is_change_attr(name: &str) -> bool {
    let n = normalize_attr_name(name);
    n == "changetype" || n == "control"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn simple_records_with_version_and_comments() {
        let text = "# KIV export\nversion: 1\n\n# first\ndn: o=A,c=SE\nobjectClass: organization\no: A\n\n\n\ndn: o=B,c=SE\n# inside\no: B\n";
        let e = parse_ldif(text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dn, "o=A,c=SE");
        assert_eq!(e[0].get("objectclass"), Some("organization"));
        assert_eq!(e[0].get("O"), Some("A"));
        assert_eq!(e[1].attrs, vec![("o".to_string(), "B".to_string())]);
    }

    #[test]
    fn version_line_directly_followed_by_dn() {
        let e = parse_ldif("version: 1\ndn: o=A\no: A\n").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].dn, "o=A");
        let err = parse_ldif("version: 2\n\ndn: o=A\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert_eq!(err.kind, LdifErrorKind::UnsupportedVersion);
    }

    #[test]
    fn folded_lines_remove_exactly_one_space() {
        let text = "dn: cn=Anna,\n ou=X\ndescription: one\n  two\n   three\n";
        let e = parse_ldif(text).unwrap();
        assert_eq!(e[0].dn, "cn=Anna,ou=X");
        assert_eq!(e[0].get("description"), Some("one two  three"));
    }

    #[test]
    fn folded_comment_lines_are_dropped() {
        let text =
            "# a long comment\n  that goes on\ndn: o=A\n# another\n folded: not-an-attr\no: A\n";
        let e = parse_ldif(text).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].attrs, vec![("o".to_string(), "A".to_string())]);
    }

    #[test]
    fn base64_values_with_swedish_letters() {
        let text = format!(
            "dn:: {}\nou:: {}\ndescription:: {}\n",
            b64("ou=Vårdcentralen Ekmansgatan,o=VGR"),
            b64("Vårdcentralen Ekmansgatan"),
            b64("Åsa Öberg-Älvsjö ")
        );
        let e = parse_ldif(&text).unwrap();
        assert_eq!(e[0].dn, "ou=Vårdcentralen Ekmansgatan,o=VGR");
        assert_eq!(e[0].get("ou"), Some("Vårdcentralen Ekmansgatan"));
        // base64 values are exact (the trailing space is kept)
        assert_eq!(e[0].get("description"), Some("Åsa Öberg-Älvsjö "));
    }

    #[test]
    fn folded_base64_value() {
        let enc = b64("Vårdcentralen Ekmansgatan");
        let (a, b) = enc.split_at(10);
        let text = format!("dn: o=A\nou:: {a}\n {b}\n");
        let e = parse_ldif(&text).unwrap();
        assert_eq!(e[0].get("ou"), Some("Vårdcentralen Ekmansgatan"));
    }

    #[test]
    fn base64_without_padding_is_accepted() {
        let enc = b64("ö");
        let trimmed = enc.trim_end_matches('=');
        assert_ne!(enc, trimmed);
        let e = parse_ldif(&format!("dn: o=A\nx:: {trimmed}\n")).unwrap();
        assert_eq!(e[0].get("x"), Some("ö"));
    }

    #[test]
    fn raw_utf8_values() {
        let e = parse_ldif(
            "dn: ou=Vårdcentralen Ekmansgatan,o=VGR\nou: Vårdcentralen Ekmansgatan\nsn: Öberg\n",
        )
        .unwrap();
        assert_eq!(e[0].dn, "ou=Vårdcentralen Ekmansgatan,o=VGR");
        assert_eq!(e[0].get("sn"), Some("Öberg"));
    }

    #[test]
    fn bom_and_crlf() {
        let text = "\u{feff}version: 1\r\n\r\ndn: o=A\r\no: A  \r\ndescription: x\r\n y\r\n\r\ndn: o=B\r\no: B\r\n";
        let e = parse_ldif(text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].get("o"), Some("A"));
        assert_eq!(e[0].get("description"), Some("xy"));
        assert_eq!(e[1].dn, "o=B");
    }

    #[test]
    fn attribute_options_and_case() {
        let e = parse_ldif("dn: o=A\nCN;lang-sv: Anna\ncn: Anna2\nObjectClass: top\n").unwrap();
        assert_eq!(e[0].attrs[0].0, "cn");
        assert_eq!(e[0].get("cn;lang-en"), Some("Anna"));
        assert_eq!(e[0].all("Cn").collect::<Vec<_>>(), vec!["Anna", "Anna2"]);
        assert_eq!(e[0].all("missing").count(), 0);
        assert_eq!(e[0].get("objectclass"), Some("top"));
    }

    #[test]
    fn trailing_spaces_trimmed_and_empty_values() {
        let e = parse_ldif("dn: o=A   \nmail:   a@b.se  \t\ndescription:\n").unwrap();
        assert_eq!(e[0].dn, "o=A");
        assert_eq!(e[0].get("mail"), Some("a@b.se"));
        assert_eq!(e[0].get("description"), Some(""));
    }

    #[test]
    fn bad_base64_reports_line_number() {
        let text = "version: 1\n\ndn: o=A\no: A\n\ndn: o=B\nou:: !!!notbase64\n";
        let err = parse_ldif(text).unwrap_err();
        assert_eq!(err.line, 7);
        assert_eq!(err.kind, LdifErrorKind::InvalidBase64("ou".into()));
        assert!(err.to_string().contains("line 7"));
    }

    #[test]
    fn folded_bad_base64_reports_first_line() {
        let text = "dn: o=A\ncn:: QUJD\n RE$$\n";
        let err = parse_ldif(text).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn invalid_utf8_in_base64_reports_line_number() {
        let bad = base64::engine::general_purpose::STANDARD.encode([0xffu8, 0xfe, 0x41]);
        let text = format!("dn: o=A\no: A\nsn:: {bad}\n");
        let err = parse_ldif(&text).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.kind, LdifErrorKind::InvalidUtf8("sn".into()));
    }

    #[test]
    fn invalid_utf8_file_bytes() {
        let bytes = b"dn: o=A\no: \xff\n";
        let err = ldif_text_from_bytes(bytes).unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(ldif_text_from_bytes(b"dn: o=A\n").unwrap(), "dn: o=A\n");
    }

    #[test]
    fn url_values_are_an_error() {
        let err = parse_ldif("dn: o=A\njpegPhoto:< file:///tmp/x.jpg\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.kind, LdifErrorKind::UrlValue("jpegPhoto".into()));
    }

    #[test]
    fn change_records_are_an_error() {
        let err = parse_ldif("dn: o=A\nchangetype: modify\nreplace: o\no: B\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.kind, LdifErrorKind::ChangeRecord);
        let err = parse_ldif("dn: o=A\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n")
            .unwrap_err();
        assert_eq!(err.kind, LdifErrorKind::ChangeRecord);
    }

    #[test]
    fn structural_errors() {
        let err = parse_ldif("o: A\n").unwrap_err();
        assert_eq!((err.line, err.kind), (1, LdifErrorKind::MissingDn));
        let err = parse_ldif("dn: o=A\nthis line has no colon\n").unwrap_err();
        assert_eq!((err.line, err.kind), (2, LdifErrorKind::MissingColon));
        let err = parse_ldif("dn: o=A\nbad name: x\n").unwrap_err();
        assert_eq!(
            (err.line, err.kind),
            (2, LdifErrorKind::InvalidAttributeName)
        );
        let err = parse_ldif("dn: o=A\no: A\ndn: o=B\n").unwrap_err();
        assert_eq!((err.line, err.kind), (3, LdifErrorKind::DnInsideRecord));
        let err = parse_ldif("dn: o=A\n\n continued\n").unwrap_err();
        assert_eq!((err.line, err.kind), (3, LdifErrorKind::OrphanContinuation));
    }

    #[test]
    fn error_messages_hold_no_values() {
        let err = parse_ldif("dn: o=A\npersonalIdentityNumber 191212121212\n").unwrap_err();
        assert!(!err.to_string().contains("1912"));
        let err = parse_ldif("dn: o=A\nsn:: ***Öberg\n").unwrap_err();
        assert!(!err.to_string().contains("Öberg"));
    }

    #[test]
    fn empty_and_whitespace_input() {
        assert!(parse_ldif("").unwrap().is_empty());
        assert!(parse_ldif("\u{feff}").unwrap().is_empty());
        assert!(parse_ldif("\n\n  \n# only a comment\n").unwrap().is_empty());
        assert!(parse_ldif("version: 1\n").unwrap().is_empty());
    }

    #[test]
    fn no_panic_on_odd_input() {
        for text in [
            ":",
            "::",
            ":<",
            "dn",
            "dn:",
            "dn::",
            "dn:: ===",
            " ",
            "\r",
            "\r\n \r\n",
            "dn: x\n:",
            "dn: x\na::",
            "dn: x\na:<",
            "#\n ",
            "version:: MQ==\ndn: x",
            "dn: x\n\u{0}: y",
            "version: 1\nversion: 1",
            "dn: x\r\r\n",
        ] {
            let _ = parse_ldif(text);
        }
        let e = parse_ldif("dn:\n").unwrap();
        assert_eq!(e[0].dn, "");
    }
}
