//! The directory boundary: KIV, the regional HSA directory. The embedded default reads an
//! LDIF snapshot; the check stage sees only `KivLookup`.

pub mod ldif;
pub mod snapshot;

pub use snapshot::{KivSnapshot, Person, Unit};

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
