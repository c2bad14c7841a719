//! The directory boundary: KIV, the regional HSA directory. The embedded default reads an
//! LDIF snapshot; production reads KIV over LDAP. The check stage sees only `KivLookup` and
//! stays pure: for LDAP, what a mail's checks ask for is fetched first into an in-memory view.

pub mod ldap;
mod ldap_settings;
pub mod ldif;
mod settings;
pub mod snapshot;
pub mod snapshot_file;

use std::cell::RefCell;
use std::collections::HashSet;

pub use ldap::{LdapDirectory, LdapError};
pub use settings::{DirectoryKind, DirectorySettings, KivSettings};
pub use snapshot::{KivSnapshot, Person, Unit};
pub use snapshot_file::SnapshotFile;

use ldif::LdifEntry;
use snapshot::{hsa_key, normalize_pnr, unit_name_key};

/// A unit name as `KivQuery::UnitName` holds it: lower-cased, whitespace collapsed.
fn unit_name_query(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What the check stage asks of KIV. Identifiers are compared without regard to case.
pub trait KivLookup {
    /// `pnr12`: 12 digits, no hyphen.
    fn person_by_pnr(&self, pnr12: &str) -> Option<&Person>;
    fn person_by_hsa_id(&self, id: &str) -> Option<&Person>;
    fn unit_by_hsa_id(&self, id: &str) -> Option<&Unit>;
    /// By `ou`, ignoring case and spacing.
    fn unit_by_name(&self, name: &str) -> Option<&Unit>;
}

impl KivLookup for KivSnapshot {
    fn person_by_pnr(&self, pnr12: &str) -> Option<&Person> {
        KivSnapshot::person_by_pnr(self, pnr12)
    }
    fn person_by_hsa_id(&self, id: &str) -> Option<&Person> {
        KivSnapshot::person_by_hsa_id(self, id)
    }
    fn unit_by_hsa_id(&self, id: &str) -> Option<&Unit> {
        KivSnapshot::unit_by_hsa_id(self, id)
    }
    fn unit_by_name(&self, name: &str) -> Option<&Unit> {
        KivSnapshot::unit_by_name(self, name)
    }
}

/// One question to KIV, in normalised form (the cache key, too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KivQuery {
    /// Person entries by `personalIdentityNumber` (12 digits).
    Pnr(String),
    /// Any entry by `hsaIdentity` (upper-cased): a unit, or a person such as a manager.
    Hsa(String),
    /// Unit entries whose `ou` matches this name (lower-cased, whitespace collapsed to one
    /// space) by the snapshot's rule (ignoring case and spacing).
    UnitName(String),
}

/// The closed set of directory backends.
// One per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Directory {
    Snapshot(SnapshotFile),
    Ldap(LdapDirectory),
}

/// Why KIV could not answer. The email then waits; it is never decided on this.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Ldap(#[from] LdapError),
    #[error("the KIV checks kept asking for more after {0} rounds of LDAP look-ups")]
    NoFixedPoint(usize),
}

/// Rounds of fetch-then-check; the checks need two (person and unit, then the manager).
const MAX_ROUNDS: usize = 6;

impl Directory {
    /// Runs `check` against KIV. On the snapshot it runs once. Over LDAP it runs against an
    /// in-memory view of what was fetched so far, records what it asked that was not fetched
    /// yet, fetches that, and runs again, until it asks for nothing new; the answer is then
    /// the one the whole directory would give.
    pub async fn run_check<T>(
        &self,
        check: impl Fn(&dyn KivLookup) -> T,
    ) -> Result<T, DirectoryError> {
        let ldap = match self {
            Directory::Snapshot(file) => return Ok(check(&*file.current())),
            Directory::Ldap(ldap) => ldap,
        };
        let mut fetched: HashSet<KivQuery> = HashSet::new();
        let mut entries: Vec<LdifEntry> = Vec::new();
        let mut dns: HashSet<String> = HashSet::new();
        for _ in 0..MAX_ROUNDS {
            let view = KivSnapshot::from_entries(&entries);
            let recorder = RecordingLookup {
                view: &view,
                asked: RefCell::new(Vec::new()),
                absent: std::cell::Cell::new(false),
            };
            let result = check(&recorder);
            let absent = recorder.absent.get();
            let missing: Vec<KivQuery> = recorder
                .asked
                .into_inner()
                .into_iter()
                .filter(|q| !fetched.contains(q))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if missing.is_empty() {
                // An answer that rests on an entry being absent (`person_not_in_kiv`, …) is
                // given only while KIV shows its canary: an emptied or hidden directory
                // makes the email wait instead.
                if absent {
                    ldap.ensure_canary().await?;
                }
                return Ok(result);
            }
            let answers = futures::future::join_all(missing.iter().map(|q| ldap.fetch(q))).await;
            for (query, answer) in missing.into_iter().zip(answers) {
                for entry in answer? {
                    // The same entry can answer two questions (a manager found by pnr and by HSA-id).
                    if dns.insert(entry.dn.to_lowercase()) {
                        entries.push(entry);
                    }
                }
                fetched.insert(query);
            }
        }
        Err(DirectoryError::NoFixedPoint(MAX_ROUNDS))
    }

    pub fn describe(&self) -> String {
        match self {
            Directory::Snapshot(s) => {
                let st = s.current().stats();
                format!("LDIF snapshot ({} persons, {} units)", st.persons, st.units)
            }
            Directory::Ldap(l) => format!("LDAP {}", l.url()),
        }
    }
}

/// Answers from the view and notes every question, so that the caller can fetch what the
/// view did not hold yet.
struct RecordingLookup<'v> {
    view: &'v KivSnapshot,
    asked: RefCell<Vec<KivQuery>>,
    /// Whether some answer was "no such entry".
    absent: std::cell::Cell<bool>,
}

impl RecordingLookup<'_> {
    fn note(&self, query: Option<KivQuery>) {
        if let Some(q) = query {
            self.asked.borrow_mut().push(q);
        }
    }

    fn seen<T>(&self, answer: Option<T>) -> Option<T> {
        if answer.is_none() {
            self.absent.set(true);
        }
        answer
    }
}

impl KivLookup for RecordingLookup<'_> {
    fn person_by_pnr(&self, pnr12: &str) -> Option<&Person> {
        self.note(normalize_pnr(pnr12).map(KivQuery::Pnr));
        // A person found may be "not at the unit": that rests on a `vgrOrgRel` value being
        // absent (an ACL could hide the attribute), so it needs the canary too.
        self.absent.set(true);
        self.view.person_by_pnr(pnr12)
    }
    fn person_by_hsa_id(&self, id: &str) -> Option<&Person> {
        self.note(
            Some(hsa_key(id))
                .filter(|k| !k.is_empty())
                .map(KivQuery::Hsa),
        );
        self.seen(self.view.person_by_hsa_id(id))
    }
    fn unit_by_hsa_id(&self, id: &str) -> Option<&Unit> {
        self.note(
            Some(hsa_key(id))
                .filter(|k| !k.is_empty())
                .map(KivQuery::Hsa),
        );
        self.seen(self.view.unit_by_hsa_id(id))
    }
    fn unit_by_name(&self, name: &str) -> Option<&Unit> {
        self.note(
            Some(unit_name_query(name))
                .filter(|k| !k.is_empty())
                .map(KivQuery::UnitName),
        );
        self.seen(self.view.unit_by_name(name))
    }
}
