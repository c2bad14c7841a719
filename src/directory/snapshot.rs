//! The KIV model (care providers, care units, persons) and an in-memory
//! snapshot of it, read from LDIF (SPEC §3.1), with lookup indexes.
//!
//! Classification of an entry by `objectClass` (case-insensitive):
//! - `inetOrgPerson` and/or `hsaPersonExtension` → [`Person`]; needs
//!   `hsaIdentity` and a `personalIdentityNumber` of 12 digits (one hyphen is
//!   removed first);
//! - `organizationalUnit` → [`Unit`]; needs `ou` and `hsaIdentity`;
//! - `organization` → [`Provider`]; needs `o` and `hsaIdentity`.
//!
//! An entry of one of these classes that lacks what it needs is skipped and
//! counted in [`SnapshotStats::skipped`]; so is an entry whose HSA-id repeats
//! one already loaded of the same kind (the first one wins). Entries of
//! other classes (the tree's root, groups, functions, ...) are ignored and
//! not counted. Values are trimmed; empty values count as absent.
//!
//! HSA-ids are compared ignoring case everywhere. `Debug` of the snapshot
//! prints only counts, never personal data.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ldif::{self, LdifEntry, LdifError};

/// A person in KIV.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub hsa_id: String,
    /// 12 digits, no hyphen.
    pub personal_identity_number: String,
    pub given_name: String,
    pub surname: String,
    pub common_name: String,
    pub mail: Option<String>,
    pub title: Option<String>,
    /// `vgrOrgRel` values: the HSA-ids of the units where the person is
    /// employed, as written in KIV.
    pub units: Vec<String>,
}

impl Person {
    /// Whether one of the person's `vgrOrgRel` values is `unit_hsa_id`
    /// (ignoring case and surrounding spaces).
    pub fn is_at_unit(&self, unit_hsa_id: &str) -> bool {
        let wanted = hsa_key(unit_hsa_id);
        !wanted.is_empty() && self.units.iter().any(|u| hsa_key(u) == wanted)
    }
}

/// A care unit (vårdenhet) in KIV.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub hsa_id: String,
    /// `ou`.
    pub name: String,
    /// `hsaResponsibleHealthCareProvider`.
    pub provider_hsa_id: Option<String>,
    /// `hsaHealthCareUnitManager`: the HSA-id of the verksamhetschef.
    pub manager_hsa_id: Option<String>,
    pub mail: Option<String>,
}

/// A care provider (vårdgivare) in KIV.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub hsa_id: String,
    /// `o`.
    pub name: String,
    /// `orgNo`: digits only (a hyphen and a `16` prefix are removed).
    pub org_no: Option<String>,
}

/// How many entries of each kind a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotStats {
    pub persons: usize,
    pub units: usize,
    pub providers: usize,
    /// Person, unit and provider entries left out: missing a required
    /// attribute, a malformed personnummer, or a repeated HSA-id.
    pub skipped: usize,
}

/// Why a KIV snapshot file could not be loaded. The message names the path
/// and, for LDIF errors, the line; never a value from the file.
#[derive(Debug, thiserror::Error)]
pub enum KivLoadError {
    #[error("cannot read KIV snapshot {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("KIV snapshot {}: {error}", path.display())]
    Ldif { path: PathBuf, error: LdifError },
    /// A snapshot with no care provider, unit or person would reject every order as not in
    /// KIV: a configuration error.
    #[error("KIV snapshot {} holds no {missing} (SPEC §3.1): is it the right file?", path.display())]
    NotKiv { path: PathBuf, missing: String },
}

/// The kinds of KIV entry, as `check` and the load error name them.
pub const KIND_PROVIDER: &str =
    "care provider (objectClass organization with o, hsaIdentity, orgNo)";
pub const KIND_UNIT: &str = "care unit (objectClass organizationalUnit with ou, hsaIdentity, hsaResponsibleHealthCareProvider, hsaHealthCareUnitManager)";
pub const KIND_PERSON: &str = "person (objectClass inetOrgPerson/hsaPersonExtension with hsaIdentity, personalIdentityNumber, givenName, sn, mail, vgrOrgRel)";

/// An in-memory KIV snapshot with indexes by personnummer, HSA-id and unit
/// name.
#[derive(Clone, Default)]
pub struct KivSnapshot {
    persons: Vec<Person>,
    units: Vec<Unit>,
    providers: Vec<Provider>,
    skipped: usize,
    /// personnummer (12 digits) → indexes into `persons`, in file order.
    person_by_pnr: HashMap<String, Vec<usize>>,
    /// upper-cased HSA-id → index.
    person_by_hsa: HashMap<String, usize>,
    unit_by_hsa: HashMap<String, usize>,
    /// name key (see [`unit_name_key`]) → index, or `None` when ambiguous.
    unit_by_name: HashMap<String, Option<usize>>,
    provider_by_hsa: HashMap<String, usize>,
}

impl fmt::Debug for KivSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KivSnapshot")
            .field("persons", &self.persons.len())
            .field("units", &self.units.len())
            .field("providers", &self.providers.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl KivSnapshot {
    /// Builds a snapshot from LDIF text.
    pub fn from_ldif(text: &str) -> Result<Self, LdifError> {
        let entries = ldif::parse_ldif(text)?;
        Ok(Self::from_entries(&entries))
    }

    /// Reads a snapshot from an LDIF file (UTF-8).
    pub fn load(path: &Path) -> Result<Self, KivLoadError> {
        let bytes = std::fs::read(path).map_err(|error| KivLoadError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let ldif_error = |error| KivLoadError::Ldif {
            path: path.to_path_buf(),
            error,
        };
        let text = ldif::ldif_text_from_bytes(&bytes).map_err(ldif_error)?;
        let snapshot = Self::from_ldif(text).map_err(ldif_error)?;
        let missing = snapshot.missing_kinds();
        if !missing.is_empty() {
            return Err(KivLoadError::NotKiv {
                path: path.to_path_buf(),
                missing: missing.join(", "),
            });
        }
        Ok(snapshot)
    }

    /// The kinds of KIV entry (SPEC §3.1) of which this holds none, named for ops.
    pub fn missing_kinds(&self) -> Vec<&'static str> {
        let st = self.stats();
        [
            (st.providers, KIND_PROVIDER),
            (st.units, KIND_UNIT),
            (st.persons, KIND_PERSON),
        ]
        .into_iter()
        .filter(|(n, _)| *n == 0)
        .map(|(_, kind)| kind)
        .collect()
    }

    /// Builds a snapshot from parsed LDIF entries.
    pub fn from_entries(entries: &[LdifEntry]) -> Self {
        let mut snap = KivSnapshot::default();
        for entry in entries {
            let classes: Vec<String> = entry
                .all("objectclass")
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            let has = |c: &str| classes.iter().any(|x| x == c);
            if has("inetorgperson") || has("hsapersonextension") {
                match person_from(entry) {
                    Some(p) => snap.add_person(p),
                    None => snap.skipped += 1,
                }
            } else if has("organizationalunit") {
                match unit_from(entry) {
                    Some(u) => snap.add_unit(u),
                    None => snap.skipped += 1,
                }
            } else if has("organization") {
                match provider_from(entry) {
                    Some(p) => snap.add_provider(p),
                    None => snap.skipped += 1,
                }
            }
        }
        snap
    }

    fn add_person(&mut self, p: Person) {
        let key = hsa_key(&p.hsa_id);
        if self.person_by_hsa.contains_key(&key) {
            self.skipped += 1;
            return;
        }
        let idx = self.persons.len();
        self.person_by_hsa.insert(key, idx);
        self.person_by_pnr
            .entry(p.personal_identity_number.clone())
            .or_default()
            .push(idx);
        self.persons.push(p);
    }

    fn add_unit(&mut self, u: Unit) {
        let key = hsa_key(&u.hsa_id);
        if self.unit_by_hsa.contains_key(&key) {
            self.skipped += 1;
            return;
        }
        let idx = self.units.len();
        self.unit_by_hsa.insert(key, idx);
        let name_key = unit_name_key(&u.name);
        if !name_key.is_empty() {
            self.unit_by_name
                .entry(name_key)
                .and_modify(|slot| *slot = None)
                .or_insert(Some(idx));
        }
        self.units.push(u);
    }

    fn add_provider(&mut self, p: Provider) {
        let key = hsa_key(&p.hsa_id);
        if self.provider_by_hsa.contains_key(&key) {
            self.skipped += 1;
            return;
        }
        self.provider_by_hsa.insert(key, self.providers.len());
        self.providers.push(p);
    }

    /// The person with this personnummer (12 digits; a hyphen is tolerated).
    /// When KIV holds several person entries with the same personnummer
    /// (e.g. employed by two providers), this is the first in file order;
    /// use [`KivSnapshot::persons_by_pnr`] to see all of them.
    pub fn person_by_pnr(&self, pnr12: &str) -> Option<&Person> {
        self.persons_by_pnr(pnr12).next()
    }

    /// All person entries with this personnummer, in file order.
    pub fn persons_by_pnr<'a>(&'a self, pnr12: &str) -> impl Iterator<Item = &'a Person> + 'a {
        normalize_pnr(pnr12)
            .and_then(|k| self.person_by_pnr.get(&k))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.persons.get(i))
    }

    /// The person with this HSA-id (ignoring case).
    pub fn person_by_hsa_id(&self, id: &str) -> Option<&Person> {
        let i = *self.person_by_hsa.get(&hsa_key(id))?;
        self.persons.get(i)
    }

    /// The unit with this HSA-id (ignoring case).
    pub fn unit_by_hsa_id(&self, id: &str) -> Option<&Unit> {
        let i = *self.unit_by_hsa.get(&hsa_key(id))?;
        self.units.get(i)
    }

    /// The unit whose `ou` equals `name` ignoring case and all whitespace.
    /// Returns `None` when no unit has that name, and also when two or more
    /// units share it (ambiguous: the caller cannot tell which is meant).
    pub fn unit_by_name(&self, name: &str) -> Option<&Unit> {
        let key = unit_name_key(name);
        let i = (*self.unit_by_name.get(&key)?)?;
        self.units.get(i)
    }

    /// The provider with this HSA-id (ignoring case).
    pub fn provider_by_hsa_id(&self, id: &str) -> Option<&Provider> {
        let i = *self.provider_by_hsa.get(&hsa_key(id))?;
        self.providers.get(i)
    }

    pub fn stats(&self) -> SnapshotStats {
        SnapshotStats {
            persons: self.persons.len(),
            units: self.units.len(),
            providers: self.providers.len(),
            skipped: self.skipped,
        }
    }
}

/// Index key for HSA-ids: trimmed, upper-cased.
pub(crate) fn hsa_key(id: &str) -> String {
    id.trim().to_uppercase()
}

/// Index key for unit names: lower-cased, all whitespace removed.
pub(crate) fn unit_name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// 12 digits after trimming and removing one hyphen; else `None`.
pub(crate) fn normalize_pnr(raw: &str) -> Option<String> {
    let t = raw.trim();
    let s = t.replacen('-', "", 1);
    (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The first non-empty (trimmed) value of an attribute.
fn first(entry: &LdifEntry, name: &str) -> Option<String> {
    entry
        .all(name)
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

fn person_from(entry: &LdifEntry) -> Option<Person> {
    let hsa_id = first(entry, "hsaidentity")?;
    let pnr = normalize_pnr(entry.get("personalidentitynumber")?)?;
    Some(Person {
        hsa_id,
        personal_identity_number: pnr,
        given_name: first(entry, "givenname").unwrap_or_default(),
        surname: first(entry, "sn").unwrap_or_default(),
        common_name: first(entry, "cn").unwrap_or_default(),
        mail: first(entry, "mail"),
        title: first(entry, "title"),
        units: entry
            .all("vgrorgrel")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn unit_from(entry: &LdifEntry) -> Option<Unit> {
    Some(Unit {
        hsa_id: first(entry, "hsaidentity")?,
        name: first(entry, "ou")?,
        provider_hsa_id: first(entry, "hsaresponsiblehealthcareprovider"),
        manager_hsa_id: first(entry, "hsahealthcareunitmanager"),
        mail: first(entry, "mail"),
    })
}

fn provider_from(entry: &LdifEntry) -> Option<Provider> {
    Some(Provider {
        hsa_id: first(entry, "hsaidentity")?,
        name: first(entry, "o")?,
        org_no: first(entry, "orgno").map(|raw| {
            let digits = raw.replace(['-', ' '], "");
            match digits.strip_prefix("16") {
                Some(rest) if digits.len() == 12 && rest.bytes().all(|b| b.is_ascii_digit()) => {
                    rest.to_string()
                }
                _ => digits,
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    const PROVIDER: &str = "SE2321000131-E000000000001";
    const UNIT: &str = "SE2321000131-E000000011111";
    const MANAGER: &str = "SE2321000131-P000000000101";
    const EMPLOYEE: &str = "SE2321000131-P000000000202";

    /// A realistic KIV excerpt: a provider, a unit (name in base64), its
    /// manager and an employee (with a folded line).
    fn sample() -> String {
        format!(
            "version: 1\n\
             \n\
             # Västra Götalandsregionen\n\
             dn: o=Västra Götalandsregionen,l=VpW,c=SE\n\
             objectClass: top\n\
             objectClass: organization\n\
             o: Västra Götalandsregionen\n\
             hsaIdentity: {PROVIDER}\n\
             orgNo: 2321000131\n\
             \n\
             dn:: {unit_dn}\n\
             objectClass: top\n\
             objectClass: organizationalUnit\n\
             ou:: {unit_ou}\n\
             hsaIdentity: {UNIT}\n\
             hsaResponsibleHealthCareProvider: {PROVIDER}\n\
             hsaHealthCareUnitManager: {MANAGER}\n\
             mail: vc.ekmansgatan@vgregion.se\n\
             \n\
             dn: cn=Karin Lindqvist,ou=Vårdcentralen Ekmansgatan,o=Västra Götalandsregionen,l=VpW,c=SE\n\
             objectClass: inetOrgPerson\n\
             objectClass: hsaPersonExtension\n\
             hsaIdentity: {MANAGER}\n\
             personalIdentityNumber: 196803152384\n\
             givenName: Karin\n\
             sn: Lindqvist\n\
             cn: Karin Lindqvist\n\
             mail: karin.lindqvist@vgregion.se\n\
             title: Verksamhetschef\n\
             vgrOrgRel: {UNIT}\n\
             \n\
             dn: cn=Tolvan Tolvansson,ou=Vårdcentralen Ekmansgatan,o=Västra Götalandsreg\n \
             ionen,l=VpW,c=SE\n\
             objectClass: inetOrgPerson\n\
             objectClass: hsaPersonExtension\n\
             hsaIdentity: {EMPLOYEE}\n\
             personalIdentityNumber: 19121212-1212\n\
             givenName: Tolvan\n\
             sn:: {sn}\n\
             cn: Tolvan Tolvansson\n\
             mail: tolvan.tolvansson@vgregion.se\n\
             title: Sjuksköterska\n\
             vgrOrgRel: {UNIT}\n\
             vgrOrgRel: SE2321000131-E000000022222\n",
            unit_dn = b64("ou=Vårdcentralen Ekmansgatan,o=Västra Götalandsregionen,l=VpW,c=SE"),
            unit_ou = b64("Vårdcentralen Ekmansgatan"),
            sn = b64("Tolvansson"),
        )
    }

    #[test]
    fn realistic_sample() {
        let snap = KivSnapshot::from_ldif(&sample()).unwrap();
        assert_eq!(
            snap.stats(),
            SnapshotStats {
                persons: 2,
                units: 1,
                providers: 1,
                skipped: 0
            }
        );

        let provider = snap.provider_by_hsa_id(PROVIDER).unwrap();
        assert_eq!(provider.name, "Västra Götalandsregionen");
        assert_eq!(provider.org_no.as_deref(), Some("2321000131"));

        let unit = snap.unit_by_hsa_id(UNIT).unwrap();
        assert_eq!(unit.name, "Vårdcentralen Ekmansgatan");
        assert_eq!(unit.provider_hsa_id.as_deref(), Some(PROVIDER));
        assert_eq!(unit.mail.as_deref(), Some("vc.ekmansgatan@vgregion.se"));

        let manager = snap
            .person_by_hsa_id(unit.manager_hsa_id.as_deref().unwrap())
            .unwrap();
        assert_eq!(manager.given_name, "Karin");
        assert_eq!(manager.title.as_deref(), Some("Verksamhetschef"));
        assert_eq!(manager.mail.as_deref(), Some("karin.lindqvist@vgregion.se"));
        assert!(manager.is_at_unit(UNIT));

        let p = snap.person_by_pnr("191212121212").unwrap();
        assert_eq!(p.hsa_id, EMPLOYEE);
        assert_eq!(p.personal_identity_number, "191212121212");
        assert_eq!(p.surname, "Tolvansson");
        assert_eq!(p.common_name, "Tolvan Tolvansson");
        assert_eq!(p.title.as_deref(), Some("Sjuksköterska"));
        assert_eq!(p.units.len(), 2);
        assert!(p.is_at_unit(UNIT));
        assert!(p.is_at_unit("SE2321000131-E000000022222"));
        assert!(!p.is_at_unit("SE2321000131-E000000033333"));

        assert_eq!(
            snap.unit_by_name("Vårdcentralen Ekmansgatan")
                .map(|u| &u.hsa_id[..]),
            Some(UNIT)
        );
    }

    #[test]
    fn hsa_id_lookups_ignore_case() {
        let snap = KivSnapshot::from_ldif(&sample()).unwrap();
        assert!(snap.unit_by_hsa_id(&UNIT.to_lowercase()).is_some());
        assert!(snap.unit_by_hsa_id(&format!("  {UNIT} ")).is_some());
        assert!(snap.person_by_hsa_id(&EMPLOYEE.to_lowercase()).is_some());
        assert!(snap
            .provider_by_hsa_id("se2321000131-e000000000001")
            .is_some());
        assert!(snap.unit_by_hsa_id(EMPLOYEE).is_none());
        assert!(snap.person_by_hsa_id(UNIT).is_none());
        assert!(snap.unit_by_hsa_id("").is_none());
        let p = snap.person_by_hsa_id(EMPLOYEE).unwrap();
        assert!(p.is_at_unit("se2321000131-e000000011111"));
        assert!(!p.is_at_unit(""));
    }

    #[test]
    fn pnr_lookup() {
        let snap = KivSnapshot::from_ldif(&sample()).unwrap();
        assert!(snap.person_by_pnr("19121212-1212").is_some());
        assert!(snap.person_by_pnr("196803152384").is_some());
        assert!(snap.person_by_pnr("1212121212").is_none());
        assert!(snap.person_by_pnr("199001010017").is_none());
        assert!(snap.person_by_pnr("").is_none());
        assert!(snap.person_by_pnr("åäö").is_none());
    }

    #[test]
    fn several_entries_with_one_pnr() {
        let text = "dn: cn=a\nobjectClass: inetOrgPerson\nhsaIdentity: SE1-A\npersonalIdentityNumber: 191212121212\nvgrOrgRel: SE1-U1\n\n\
                    dn: cn=b\nobjectClass: hsaPersonExtension\nhsaIdentity: SE1-B\npersonalIdentityNumber: 191212121212\nvgrOrgRel: SE1-U2\n";
        let snap = KivSnapshot::from_ldif(text).unwrap();
        assert_eq!(snap.stats().persons, 2);
        assert_eq!(snap.person_by_pnr("191212121212").unwrap().hsa_id, "SE1-A");
        assert!(snap
            .persons_by_pnr("191212121212")
            .any(|p| p.is_at_unit("SE1-U2")));
        assert_eq!(snap.persons_by_pnr("191212121212").count(), 2);
        assert_eq!(snap.persons_by_pnr("x").count(), 0);
    }

    #[test]
    fn unit_name_ignores_case_and_spacing() {
        let snap = KivSnapshot::from_ldif(&sample()).unwrap();
        for name in [
            "vårdcentralen ekmansgatan",
            "VÅRDCENTRALEN EKMANSGATAN",
            "  Vårdcentralen   Ekmansgatan ",
            "Vårdcentralen\tEkmansgatan",
            "VårdcentralenEkmansgatan",
        ] {
            assert_eq!(
                snap.unit_by_name(name).map(|u| &u.hsa_id[..]),
                Some(UNIT),
                "{name:?}"
            );
        }
        assert!(snap.unit_by_name("Vårdcentralen Ekmansgatan Syd").is_none());
        assert!(snap.unit_by_name("").is_none());
        assert!(snap.unit_by_name("   ").is_none());
    }

    #[test]
    fn ambiguous_unit_name_gives_none() {
        let text = "dn: ou=a\nobjectClass: organizationalUnit\nou: Vårdcentralen Hjärtat\nhsaIdentity: SE1-U1\n\n\
                    dn: ou=b\nobjectClass: organizationalUnit\nou: vårdcentralen  hjärtat\nhsaIdentity: SE1-U2\n\n\
                    dn: ou=c\nobjectClass: organizationalUnit\nou: Vårdcentralen Centrum\nhsaIdentity: SE1-U3\n";
        let snap = KivSnapshot::from_ldif(text).unwrap();
        assert_eq!(snap.stats().units, 3);
        assert!(snap.unit_by_name("Vårdcentralen Hjärtat").is_none());
        assert!(snap.unit_by_hsa_id("SE1-U1").is_some());
        assert!(snap.unit_by_hsa_id("SE1-U2").is_some());
        assert_eq!(
            snap.unit_by_name("vårdcentralen centrum").unwrap().hsa_id,
            "SE1-U3"
        );
    }

    #[test]
    fn incomplete_entries_are_skipped() {
        let text = "\
dn: c=SE\nobjectClass: country\nc: SE\n\n\
dn: o=NoId\nobjectClass: organization\no: NoId\n\n\
dn: o=NoName\nobjectClass: organization\nhsaIdentity: SE1-P\n\n\
dn: ou=NoId\nobjectClass: organizationalUnit\nou: NoId\n\n\
dn: ou=NoName\nobjectClass: organizationalUnit\nou:   \nhsaIdentity: SE1-U\n\n\
dn: cn=NoPnr\nobjectClass: inetOrgPerson\nhsaIdentity: SE1-A\n\n\
dn: cn=ShortPnr\nobjectClass: inetOrgPerson\nhsaIdentity: SE1-B\npersonalIdentityNumber: 121212-1212\n\n\
dn: cn=BadPnr\nobjectClass: hsaPersonExtension\nhsaIdentity: SE1-C\npersonalIdentityNumber: 19121212x1212\n\n\
dn: cn=NoHsa\nobjectClass: inetOrgPerson\npersonalIdentityNumber: 191212121212\n\n\
dn: cn=Ok\nobjectClass: INETORGPERSON\nhsaIdentity: SE1-D\npersonalIdentityNumber: 19900101-0017\n\n\
dn: cn=Dup\nobjectClass: inetOrgPerson\nhsaIdentity: se1-d\npersonalIdentityNumber: 191212121212\n";
        let snap = KivSnapshot::from_ldif(text).unwrap();
        assert_eq!(
            snap.stats(),
            SnapshotStats {
                persons: 1,
                units: 0,
                providers: 0,
                skipped: 9
            }
        );
        let p = snap.person_by_pnr("199001010017").unwrap();
        assert_eq!(p.given_name, "");
        assert_eq!(p.mail, None);
        assert!(p.units.is_empty());
        assert!(snap.person_by_pnr("191212121212").is_none());
    }

    #[test]
    fn provider_org_no_is_normalised() {
        let text = "dn: o=a\nobjectClass: organization\no: A\nhsaIdentity: SE1-A\norgNo: 16556016-0680\n\n\
                    dn: o=b\nobjectClass: organization\no: B\nhsaIdentity: SE1-B\norgNo: 232100-0131\n\n\
                    dn: o=c\nobjectClass: organization\no: C\nhsaIdentity: SE1-C\n";
        let snap = KivSnapshot::from_ldif(text).unwrap();
        assert_eq!(
            snap.provider_by_hsa_id("SE1-A").unwrap().org_no.as_deref(),
            Some("5560160680")
        );
        assert_eq!(
            snap.provider_by_hsa_id("SE1-B").unwrap().org_no.as_deref(),
            Some("2321000131")
        );
        assert_eq!(snap.provider_by_hsa_id("SE1-C").unwrap().org_no, None);
    }

    #[test]
    fn debug_shows_only_counts() {
        let snap = KivSnapshot::from_ldif(&sample()).unwrap();
        let dbg = format!("{snap:?}");
        assert_eq!(
            dbg,
            "KivSnapshot { persons: 2, units: 1, providers: 1, skipped: 0 }"
        );
        assert!(!dbg.contains("1912"));
        assert!(!dbg.contains("Tolvan"));
    }

    #[test]
    fn ldif_errors_pass_through() {
        let err = KivSnapshot::from_ldif("dn: o=A\no:: ###\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn load_from_file_and_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("kiv-snapshot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let good = dir.join("kiv.ldif");
        std::fs::write(&good, sample()).unwrap();
        assert_eq!(KivSnapshot::load(&good).unwrap().stats().persons, 2);

        let only_people = dir.join("people.ldif");
        let people: String = sample()
            .split("\n\n")
            .filter(|e| e.contains("inetOrgPerson"))
            .collect::<Vec<_>>()
            .join("\n\n");
        std::fs::write(&only_people, people).unwrap();
        let err = KivSnapshot::load(&only_people).unwrap_err().to_string();
        assert!(err.contains("holds no care provider"), "{err}");
        assert!(err.contains("care unit"), "{err}");
        assert!(!err.contains("person ("), "{err}");

        let missing = dir.join("missing.ldif");
        let err = KivSnapshot::load(&missing).unwrap_err();
        assert!(matches!(err, KivLoadError::Io { .. }));
        assert!(err.to_string().contains("missing.ldif"));

        let bad = dir.join("bad.ldif");
        std::fs::write(
            &bad,
            "dn: o=A\nsn: Öberg\npersonalIdentityNumber:: ***191212\n",
        )
        .unwrap();
        let err = KivSnapshot::load(&bad).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.ldif") && msg.contains("line 3"), "{msg}");
        assert!(!msg.contains("191212") && !msg.contains("Öberg"));

        let not_utf8 = dir.join("latin1.ldif");
        std::fs::write(&not_utf8, b"dn: o=A\n\nsn: \xd6berg\n").unwrap();
        let msg = KivSnapshot::load(&not_utf8).unwrap_err().to_string();
        assert!(
            msg.contains("latin1.ldif") && msg.contains("line 3"),
            "{msg}"
        );

        let _ = std::fs::remove_dir_all(&dir);
    }
}
