//! What the pipeline decides: codes of SPEC §4, findings, cases and the outcome of one email.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::forms::spec::FormKind;
use crate::forms::FieldBox;

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $code:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($code => Some($name::$variant),)* _ => None }
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes!(
    /// SPEC §4.2: any one makes the case rejected.
    ReasonCode {
        MissingField => "missing_field",
        InvalidField => "invalid_field",
        PersonNotInKiv => "person_not_in_kiv",
        PersonNotAtUnit => "person_not_at_unit",
        UnitNotInKiv => "unit_not_in_kiv",
        ProviderNotConnected => "provider_not_connected",
        SenderNotManager => "sender_not_manager",
        UnauthenticatedSender => "unauthenticated_sender",
        CutCardNotConfirmed => "cut_card_not_confirmed",
        SignatureMissing => "signature_missing",
        SignedFormRequired => "signed_form_required",
        UnreadableAttachment => "unreadable_attachment",
        NoFormFound => "no_form_found",
    }
);

codes!(
    /// SPEC §4.3: the case keeps its decision; staff see them.
    WarningCode {
        KivEmploymentMissing => "kiv_employment_missing",
        UnitNotInKiv => "unit_not_in_kiv",
        SenderNotManager => "sender_not_manager",
        NameMismatch => "name_mismatch",
        CardNumberChecksum => "card_number_checksum",
        LowOcrConfidence => "low_ocr_confidence",
        SignatureNotChecked => "signature_not_checked",
        OpenOrderExists => "open_order_exists",
    }
);

codes!(
    /// SPEC §4.1: no case, no reply.
    IgnoreReason {
        Duplicate => "duplicate",
        OwnMail => "own_mail",
        Bounce => "bounce",
        AutoReply => "auto_reply",
    }
);

codes!(
    /// What became of one email (the `decision` of `process --json`, the `outcome` label of
    /// the emails metric, and what the source does with the message when it acknowledges it).
    EmailOutcome {
        Processed => "processed",
        Ignored => "ignored",
        Quarantined => "quarantined",
    }
);

codes!(
    CaseKind {
        Order => "order",
        Deregistration => "deregistration",
        Unknown => "unknown",
    }
);

codes!(
    Decision {
        Queued => "queued",
        Rejected => "rejected",
    }
);

impl From<FormKind> for CaseKind {
    fn from(k: FormKind) -> Self {
        match k {
            FormKind::Order => CaseKind::Order,
            FormKind::Deregistration => CaseKind::Deregistration,
        }
    }
}

/// A reason or a warning, with the field it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Finding<C> {
    pub code: C,
    pub field: Option<&'static str>,
}

impl<C> Finding<C> {
    pub fn new(code: C, field: Option<&'static str>) -> Self {
        Finding { code, field }
    }
}

/// Normalised field values in the order of the kind's table; `None` when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(pub Vec<(&'static str, Option<String>)>);

impl Fields {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Facts found while checking that the reply and staff need, beyond the fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseContext {
    /// The attachment the form came from (`None` for the body).
    pub attachment: Option<String>,
    /// Its place among the email's attachments (0-based, those of forwarded messages in
    /// place), so that staff can be shown the very pages the form was read from.
    pub attachment_index: Option<usize>,
    pub pages: Vec<usize>,
    /// `YYYYMMDD-XXXX`, when the personnummer was valid.
    pub personnummer_masked: Option<String>,
    /// The verksamhetschef's KIV address, for later notices.
    pub manager_mail: Option<String>,
    /// The holder's KIV address (deregistration notices).
    pub holder_mail: Option<String>,
    /// The person's name as KIV spells it (`givenName sn`), when KIV knows the person: shown
    /// beside a name that differs, and searched.
    pub kiv_name: Option<String>,
    /// Where each field's value (or, when it was empty, its label) was read on a scanned page,
    /// so that staff verifying an uncertain reading see the crop (SPEC §4.4). Empty for
    /// digital forms.
    pub field_boxes: Vec<FieldBox>,
}

/// One form, checked and decided.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCase {
    pub kind: CaseKind,
    pub decision: Decision,
    pub reasons: Vec<Finding<ReasonCode>>,
    pub warnings: Vec<Finding<WarningCode>>,
    pub fields: Fields,
    pub context: CaseContext,
    /// SPEC §4.4: the fields (`None`: a reason with no field) whose uncertain OCR reading the
    /// rejection rests on. Not empty: the case is held for staff and gets no reply until they
    /// confirm or correct the values. Always empty for a queued case.
    pub verify: Vec<Option<&'static str>>,
}

impl CheckedCase {
    pub fn new(
        kind: CaseKind,
        reasons: Vec<Finding<ReasonCode>>,
        warnings: Vec<Finding<WarningCode>>,
        fields: Fields,
        context: CaseContext,
    ) -> Self {
        let decision = if reasons.is_empty() {
            Decision::Queued
        } else {
            Decision::Rejected
        };
        CheckedCase {
            kind,
            decision,
            reasons,
            warnings,
            fields,
            context,
            verify: Vec::new(),
        }
    }

    /// Whether the case waits for staff to verify its reading before it is replied to.
    pub fn held(&self) -> bool {
        !self.verify.is_empty()
    }
}

/// A reply ready for the outbox (a first reply or a notice; the store keeps it until it is
/// sent): its envelope and the whole message.
#[derive(Debug, Clone)]
pub struct RenderedReply {
    pub message_id: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub raw: Vec<u8>,
}

impl ReasonCode {
    /// The reason in a few Swedish words, for staff (the staff pages, refusals).
    pub fn label_sv(self) -> &'static str {
        match self {
            ReasonCode::MissingField => "Fält saknas",
            ReasonCode::InvalidField => "Ogiltigt värde",
            ReasonCode::PersonNotInKiv => "Personen finns inte i KIV",
            ReasonCode::PersonNotAtUnit => "Personen är inte registrerad på vårdenheten",
            ReasonCode::UnitNotInKiv => "Vårdenheten finns inte i KIV",
            ReasonCode::ProviderNotConnected => "Vårdgivaren är inte ansluten",
            ReasonCode::SenderNotManager => "Avsändaren är inte verksamhetschef",
            ReasonCode::UnauthenticatedSender => "Avsändaren kunde inte verifieras (DMARC)",
            ReasonCode::CutCardNotConfirmed => "Klippt kort är inte bekräftat",
            ReasonCode::SignatureMissing => "Blanketten är inte underskriven",
            ReasonCode::SignedFormRequired => "Underskriven blankett krävs",
            ReasonCode::UnreadableAttachment => "Bilagan kunde inte läsas",
            ReasonCode::NoFormFound => "Ingen blankett hittades",
        }
    }
}
