//! The register of connected care providers (SPEC §3.2).
//!
//! A CSV file, UTF-8 (a BOM is tolerated), with the header
//! `organisationsnummer,vardgivare,ansluten` (case-insensitive, spaces around
//! the names allowed). Each row: the organisation number with or without
//! hyphen (also with the `16` prefix), or for a sole trader the owner's
//! 12-digit personnummer with or without hyphen; the provider's name; the
//! date it was connected, `YYYY-MM-DD`.
//!
//! Keys are stored digits only: 10 digits for an organisation number (a
//! 12-digit `16NNNNNNNNNN` is reduced to its last 10), 12 digits for a
//! personnummer. A key that appears on several rows keeps the earliest date
//! and the first non-empty name.
//!
//! Errors name the line number (and the path when loading a file), never a
//! value from the file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// Where the register is read from (`[providers]`): owned here, gathered by `config`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// Register of connected providers (CSV).
    pub csv: PathBuf,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            csv: "fixtures/providers.csv".into(),
        }
    }
}

impl ProviderSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.csv.is_file() {
            p.push(format!(
                "providers.csv: no such file: {}",
                self.csv.display()
            ));
        } else if let Err(e) = ProviderRegister::load(&self.csv) {
            p.push(format!("providers.csv: {e}"));
        }
        p
    }
}

/// Why the register could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read provider register {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("provider register {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<RegisterError>,
    },
    #[error("the provider register is empty (expected the header `organisationsnummer,vardgivare,ansluten`)")]
    Empty,
    #[error("no provider is connected: the register has a header and no rows (an empty register would reject every order provider_not_connected)")]
    NoProviders,
    #[error("line {line}: the header must be `organisationsnummer,vardgivare,ansluten`")]
    BadHeader { line: u64 },
    #[error("line {line}: expected 3 columns, found {found}")]
    ColumnCount { line: u64, found: usize },
    #[error("line {line}: organisationsnummer is neither a 10-digit organisation number nor a 12-digit personnummer")]
    BadKey { line: u64 },
    #[error("line {line}: ansluten is not a date YYYY-MM-DD")]
    BadDate { line: u64 },
    #[error("line {line}: the file is not valid CSV")]
    Csv { line: u64 },
}

/// One period of connection: from a date, until a date (exclusive) or for as long as the
/// register says nothing else. A disconnection ends the open period; it is never deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl Period {
    pub fn covers(&self, on: NaiveDate) -> bool {
        self.from <= on && self.until.is_none_or(|until| on < until)
    }
}

#[derive(Clone)]
struct Connection {
    periods: Vec<Period>,
    name: Option<String>,
}

/// The connected providers, by organisation number or personnummer.
#[derive(Clone, Default)]
pub struct ProviderRegister {
    by_key: HashMap<String, Connection>,
}

impl fmt::Debug for ProviderRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegister")
            .field("providers", &self.by_key.len())
            .finish()
    }
}

const HEADER: [&str; 3] = ["organisationsnummer", "vardgivare", "ansluten"];

/// One row of the register file, with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: u64,
    /// Digits only (see the module's text).
    pub key: String,
    pub name: String,
    pub since: NaiveDate,
}

/// The rows of a register file (SPEC §3.2), in file order; the first error names its line.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, RegisterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut seen_header = false;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(RegisterError::Csv { line });
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        // A line of spaces (or `,,`) is a blank line.
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if !seen_header {
            let ok = record.len() == HEADER.len()
                && record
                    .iter()
                    .zip(HEADER)
                    .all(|(f, h)| f.trim().eq_ignore_ascii_case(h));
            if !ok {
                return Err(RegisterError::BadHeader { line });
            }
            seen_header = true;
            continue;
        }
        if record.len() != HEADER.len() {
            return Err(RegisterError::ColumnCount {
                line,
                found: record.len(),
            });
        }
        let key = normalize_key(record.get(0).unwrap_or_default())
            .ok_or(RegisterError::BadKey { line })?;
        let name = collapse_whitespace(record.get(1).unwrap_or_default());
        let since =
            parse_date(record.get(2).unwrap_or_default()).ok_or(RegisterError::BadDate { line })?;
        rows.push(CsvRow {
            line,
            key,
            name,
            since,
        });
    }
    if !seen_header {
        return Err(RegisterError::Empty);
    }
    Ok(rows)
}

impl ProviderRegister {
    /// Parses the register from CSV text.
    pub fn from_csv(text: &str) -> Result<Self, RegisterError> {
        Ok(Self::from_csv_rows(&parse_csv(text)?))
    }

    /// The register of parsed CSV rows (a number on several rows: its earliest date, its
    /// first name).
    pub fn from_csv_rows(rows: &[CsvRow]) -> Self {
        let mut register = ProviderRegister::default();
        for row in rows.iter().cloned() {
            let name = (!row.name.is_empty()).then_some(row.name);
            register
                .by_key
                .entry(row.key)
                .and_modify(|c| {
                    c.periods[0].from = c.periods[0].from.min(row.since);
                    if c.name.is_none() {
                        c.name.clone_from(&name);
                    }
                })
                .or_insert(Connection {
                    periods: vec![Period {
                        from: row.since,
                        until: None,
                    }],
                    name,
                });
        }
        register
    }

    /// Whether both hold the same providers, names and periods.
    pub fn same_as(&self, other: &ProviderRegister) -> bool {
        self.by_key.len() == other.by_key.len()
            && self.by_key.iter().all(|(k, c)| {
                other
                    .by_key
                    .get(k)
                    .is_some_and(|o| o.name == c.name && o.periods == c.periods)
            })
    }

    /// The register as the store keeps it: each provider's key, name and periods.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, String, Vec<Period>)>) -> Self {
        let by_key = entries
            .into_iter()
            .map(|(key, name, periods)| {
                let name = (!name.is_empty()).then_some(name);
                (key, Connection { periods, name })
            })
            .collect();
        ProviderRegister { by_key }
    }

    /// Reads the register from a CSV file.
    pub fn load(path: &Path) -> Result<Self, RegisterError> {
        let text = std::fs::read_to_string(path).map_err(|error| RegisterError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let in_file = |error| RegisterError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        };
        let register = Self::from_csv(&text).map_err(in_file)?;
        // A register file with no provider is a configuration error, never a reason to
        // reject every order.
        if register.is_empty() {
            return Err(in_file(RegisterError::NoProviders));
        }
        Ok(register)
    }

    /// The date the provider was first connected. `key` is digits only: a 10-digit
    /// organisation number or a 12-digit personnummer (a hyphen and a `16`
    /// prefix are tolerated too).
    pub fn connected_since(&self, key: &str) -> Option<NaiveDate> {
        self.get(key)?.periods.iter().map(|p| p.from).min()
    }

    /// Whether the provider is connected on the date `on`: one of its periods covers it
    /// (for a CSV register: it is listed and `ansluten` is not after `on`).
    pub fn is_connected(&self, key: &str, on: NaiveDate) -> bool {
        self.get(key)
            .is_some_and(|c| c.periods.iter().any(|p| p.covers(on)))
    }

    /// The provider's name as written in the register (whitespace collapsed);
    /// `None` when the key is unknown or the name column was empty.
    pub fn provider_name(&self, key: &str) -> Option<&str> {
        self.get(key)?.name.as_deref()
    }

    /// Number of distinct providers.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Providers connected on the date `on`, and the others (connected only from a later
    /// date, or no longer).
    pub fn connected_on(&self, on: NaiveDate) -> (usize, usize) {
        let now = self
            .by_key
            .values()
            .filter(|c| c.periods.iter().any(|p| p.covers(on)))
            .count();
        (now, self.by_key.len() - now)
    }

    fn get(&self, key: &str) -> Option<&Connection> {
        self.by_key.get(&normalize_key(key)?)
    }
}

/// Digits only: hyphens removed, `16` prefix of a 12-digit number removed.
/// `None` unless the result is 10 or 12 digits.
pub fn normalize_key(raw: &str) -> Option<String> {
    let digits: String = raw.trim().chars().filter(|&c| c != '-').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.len() {
        10 => Some(digits),
        12 => match digits.strip_prefix("16") {
            Some(org) => Some(org.to_string()),
            None => Some(digits),
        },
        _ => None,
    }
}

/// Strictly `YYYY-MM-DD`, a real date.
fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = raw.trim();
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let year = s.get(0..4)?.parse().ok()?;
    let month = s.get(5..7)?.parse().ok()?;
    let day = s.get(8..10)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const SAMPLE: &str = "\u{feff}Organisationsnummer , Vardgivare,ANSLUTEN\r\n\
        232100-0131,Västra Götalandsregionen,2020-01-01\r\n\
        5560160680,\"Hälsan Väst, AB\",2026-03-15\r\n\
        165591234560,Tandvården i Mölndal AB,2024-06-01\r\n\
        19121212-1212,Tolvans  Fotvård,2025-09-01\r\n\
        \r\n\
        \r\n";

    #[test]
    fn parses_sample() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert_eq!(reg.len(), 4);
        assert!(!reg.is_empty());
        assert_eq!(reg.connected_since("2321000131"), Some(d("2020-01-01")));
        assert_eq!(
            reg.provider_name("2321000131"),
            Some("Västra Götalandsregionen")
        );
        assert_eq!(reg.provider_name("5560160680"), Some("Hälsan Väst, AB"));
        assert_eq!(reg.provider_name("191212121212"), Some("Tolvans Fotvård"));
        assert_eq!(reg.provider_name("0000000000"), None);
    }

    #[test]
    fn providers_connected_from_a_later_date_are_counted_apart() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert_eq!(reg.connected_on(d("2025-01-01")), (2, 2));
        assert_eq!(reg.connected_on(d("2025-09-01")), (3, 1));
        assert_eq!(reg.connected_on(d("2026-03-15")), (4, 0));
        assert_eq!(reg.connected_on(d("2019-12-31")), (0, 4));
    }

    #[test]
    fn keys_with_and_without_hyphen() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        // register with hyphen, looked up without
        assert!(reg.connected_since("2321000131").is_some());
        // register without hyphen, lookup with is tolerated too
        assert!(reg.connected_since("556016-0680").is_some());
        assert!(reg.connected_since("5560160680").is_some());
    }

    #[test]
    fn sixteen_prefix_is_reduced() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert_eq!(reg.connected_since("5591234560"), Some(d("2024-06-01")));
        assert_eq!(reg.connected_since("165591234560"), Some(d("2024-06-01")));
        assert_eq!(reg.connected_since("16232100-0131"), Some(d("2020-01-01")));
    }

    #[test]
    fn sole_trader_personnummer() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert_eq!(reg.connected_since("191212121212"), Some(d("2025-09-01")));
        // the 10-digit form is a different key
        assert_eq!(reg.connected_since("1212121212"), None);
        let reg = ProviderRegister::from_csv(
            "organisationsnummer,vardgivare,ansluten\n199001010017,Sara Läkare,2025-01-01\n",
        )
        .unwrap();
        assert!(reg.is_connected("199001010017", d("2025-01-01")));
    }

    #[test]
    fn date_boundary() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert!(reg.is_connected("5560160680", d("2026-03-15")));
        assert!(!reg.is_connected("5560160680", d("2026-03-14")));
        assert!(reg.is_connected("5560160680", d("2030-01-01")));
        assert!(!reg.is_connected("9999999999", d("2030-01-01")));
        assert!(!reg.is_connected("", d("2030-01-01")));
    }

    #[test]
    fn bad_rows_name_the_line() {
        let head = "organisationsnummer,vardgivare,ansluten\n";
        type Check = fn(&RegisterError) -> bool;
        let cases: [(&str, Check); 8] = [
            ("5560160680,Hälsan Väst, AB,2026-03-15\n", |e| {
                matches!(e, RegisterError::ColumnCount { line: 3, found: 4 })
            }),
            ("5560160680,Hälsan\n", |e| {
                matches!(e, RegisterError::ColumnCount { line: 3, found: 2 })
            }),
            ("556016068,Hälsan,2026-03-15\n", |e| {
                matches!(e, RegisterError::BadKey { line: 3 })
            }),
            ("19121212+1212,Hälsan,2026-03-15\n", |e| {
                matches!(e, RegisterError::BadKey { line: 3 })
            }),
            ("5560160680,Hälsan,2026-02-30\n", |e| {
                matches!(e, RegisterError::BadDate { line: 3 })
            }),
            ("5560160680,Hälsan,20260315\n", |e| {
                matches!(e, RegisterError::BadDate { line: 3 })
            }),
            ("5560160680,Hälsan,2026-3-15\n", |e| {
                matches!(e, RegisterError::BadDate { line: 3 })
            }),
            ("5560160680,Hälsan,\n", |e| {
                matches!(e, RegisterError::BadDate { line: 3 })
            }),
        ];
        for (row, check) in cases {
            let text = format!("{head}232100-0131,VGR,2020-01-01\n{row}");
            let err = ProviderRegister::from_csv(&text).unwrap_err();
            assert!(check(&err), "{row:?}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains("line 3"), "{msg}");
            assert!(!msg.contains("556016") && !msg.contains("Hälsan"), "{msg}");
        }
    }

    #[test]
    fn personnummer_not_in_error_message() {
        let err = ProviderRegister::from_csv(
            "organisationsnummer,vardgivare,ansluten\n19121212-1212,Tolvan,1 jan 2020\n",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("1212"));
    }

    #[test]
    fn header_errors() {
        assert!(matches!(
            ProviderRegister::from_csv(""),
            Err(RegisterError::Empty)
        ));
        assert!(matches!(
            ProviderRegister::from_csv("\u{feff}\n\n"),
            Err(RegisterError::Empty)
        ));
        for bad in [
            "orgnr,vardgivare,ansluten\n",
            "organisationsnummer;vardgivare;ansluten\n",
            "organisationsnummer,vardgivare\n",
            "5560160680,Hälsan,2026-03-15\n",
        ] {
            assert!(
                matches!(
                    ProviderRegister::from_csv(bad),
                    Err(RegisterError::BadHeader { line: 1 })
                ),
                "{bad:?}"
            );
        }
        let reg = ProviderRegister::from_csv("organisationsnummer,vardgivare,ansluten\n").unwrap();
        assert!(reg.is_empty());
    }

    #[test]
    fn a_register_file_without_providers_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "organisationsnummer,vardgivare,ansluten\n").unwrap();
        let err = ProviderRegister::load(&path).unwrap_err().to_string();
        assert!(err.contains("no provider is connected"), "{err}");
        let problems = ProviderSettings { csv: path.clone() }.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("providers.csv: provider register"),
            "{problems:?}"
        );
        std::fs::write(
            &path,
            "organisationsnummer,vardgivare,ansluten\n5560160680,x,2020-01-01\n",
        )
        .unwrap();
        assert!(ProviderSettings { csv: path }.problems().is_empty());
    }

    #[test]
    fn duplicate_keys_keep_earliest_date() {
        let reg = ProviderRegister::from_csv(
            "organisationsnummer,vardgivare,ansluten\n\
             556016-0680,,2026-05-01\n\
             5560160680,Hälsan Väst AB,2025-05-01\n",
        )
        .unwrap();
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.connected_since("5560160680"), Some(d("2025-05-01")));
        assert_eq!(reg.provider_name("5560160680"), Some("Hälsan Väst AB"));
    }

    #[test]
    fn blank_lines_and_whitespace() {
        let reg = ProviderRegister::from_csv(
            "\n organisationsnummer , vardgivare , ansluten \n\n 556016-0680 , Hälsan , 2026-03-15 \n   \n,,\n",
        )
        .unwrap();
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.provider_name("5560160680"), Some("Hälsan"));
    }

    #[test]
    fn debug_shows_only_count() {
        let reg = ProviderRegister::from_csv(SAMPLE).unwrap();
        assert_eq!(format!("{reg:?}"), "ProviderRegister { providers: 4 }");
    }

    #[test]
    fn load_names_the_path() {
        let dir =
            std::env::temp_dir().join(format!("provider-register-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("providers.csv");
        std::fs::write(&good, SAMPLE).unwrap();
        assert_eq!(ProviderRegister::load(&good).unwrap().len(), 4);

        let bad = dir.join("bad.csv");
        std::fs::write(
            &bad,
            "organisationsnummer,vardgivare,ansluten\n123,x,2020-01-01\n",
        )
        .unwrap();
        let msg = ProviderRegister::load(&bad).unwrap_err().to_string();
        assert!(msg.contains("bad.csv") && msg.contains("line 2"), "{msg}");

        let msg = ProviderRegister::load(&dir.join("none.csv"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("none.csv"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_panic_on_odd_input() {
        for text in [
            "\"",
            "\"\n\"",
            ",",
            "organisationsnummer,vardgivare,ansluten\n\"unterminated",
            "organisationsnummer,vardgivare,ansluten\n١٢٣٤٥٦٧٨٩٠,x,2020-01-01",
            "organisationsnummer,vardgivare,ansluten\n5560160680,x,２０２０-01-01",
        ] {
            let _ = ProviderRegister::from_csv(text);
        }
    }
}
