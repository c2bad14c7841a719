//! The field tables of the two forms (SPEC §2.2, §2.3): AcroForm names (also the JSON keys),
//! printed labels, choices and whether a field is required. Everything that reads or writes
//! a form takes its names and labels from here.

/// The two kinds of form the office receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FormKind {
    /// TJID-101 "Beställning av eTjänstekort".
    Order,
    /// TJID-102 "Avregistrering av eTjänstekort".
    Deregistration,
}

impl FormKind {
    pub const ALL: [FormKind; 2] = [FormKind::Order, FormKind::Deregistration];

    pub fn form_id(self) -> &'static str {
        match self {
            FormKind::Order => "TJID-101",
            FormKind::Deregistration => "TJID-102",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            FormKind::Order => "Beställning av eTjänstekort",
            FormKind::Deregistration => "Avregistrering av eTjänstekort",
        }
    }

    /// The `kind` value of the JSON contract.
    pub fn as_str(self) -> &'static str {
        match self {
            FormKind::Order => "order",
            FormKind::Deregistration => "deregistration",
        }
    }

    /// The form kind of a case's `kind` (`None` for `unknown`, which has no form).
    pub fn parse(kind: &str) -> Option<FormKind> {
        FormKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            FormKind::Order => ORDER_FIELDS,
            FormKind::Deregistration => DEREGISTRATION_FIELDS,
        }
    }

    pub fn field(self, key: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|f| f.key == key)
    }
}

/// One option of a choice field: the AcroForm export value and the text printed after its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChoiceOption {
    pub export: &'static str,
    pub label: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Free text or a formatted value (personnummer, date, …).
    Text,
    /// Exactly one of the options is to be marked (an AcroForm radio group).
    Choice(&'static [ChoiceOption]),
    /// Ja/Nej, or one box that is marked or not (an AcroForm checkbox with export value `Ja`).
    YesNo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Required,
    Optional,
    /// Required only when the choice field `field` has exactly `export` chosen.
    RequiredWhen {
        field: &'static str,
        export: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// AcroForm field name and JSON key.
    pub key: &'static str,
    /// The label printed on the form, with diacritics, without a colon.
    pub label: &'static str,
    pub field_type: FieldType,
    pub requirement: Requirement,
}

pub const BESTALLNINGSTYP_OPTIONS: &[ChoiceOption] = &[
    ChoiceOption {
        export: "Nytt",
        label: "Nytt kort",
    },
    ChoiceOption {
        export: "Ersattning",
        label: "Ersättningskort",
    },
    ChoiceOption {
        export: "Fornyelse",
        label: "Förnyelse",
    },
];

pub const UTLAMNING_OPTIONS: &[ChoiceOption] = &[
    ChoiceOption {
        export: "Utlamningsstalle",
        label: "Utlämningsställe",
    },
    ChoiceOption {
        export: "Utkorning",
        label: "Utkörning",
    },
];

/// Export values of the `klippt_kort` field.
pub const YES: &str = "Ja";
pub const NO: &str = "Nej";

const fn text(key: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        key,
        label,
        field_type: FieldType::Text,
        requirement: Requirement::Required,
    }
}

pub const ORDER_FIELDS: &[FieldSpec] = &[
    text("vardgivare_namn", "Vårdgivare"),
    text("vardgivare_orgnr", "Organisationsnummer"),
    text("vardenhet_namn", "Vårdenhet"),
    text("vardenhet_hsaid", "Vårdenhetens HSA-id"),
    text("fornamn", "Förnamn"),
    text("efternamn", "Efternamn"),
    text("personnummer", "Personnummer"),
    text("epost", "E-postadress"),
    text("mobil", "Mobiltelefon"),
    text("befattning", "Befattning"),
    FieldSpec {
        key: "bestallningstyp",
        label: "Beställningen avser",
        field_type: FieldType::Choice(BESTALLNINGSTYP_OPTIONS),
        requirement: Requirement::Required,
    },
    FieldSpec {
        key: "utlamning",
        label: "Utlämning",
        field_type: FieldType::Choice(UTLAMNING_OPTIONS),
        requirement: Requirement::Required,
    },
    FieldSpec {
        key: "utlamningsstalle",
        label: "Utlämningsställe (namn)",
        field_type: FieldType::Text,
        requirement: Requirement::RequiredWhen {
            field: "utlamning",
            export: "Utlamningsstalle",
        },
    },
    text("vc_namn", "Verksamhetschef"),
    text("vc_epost", "Verksamhetschefens e-post"),
    text("vc_telefon", "Telefon"),
    text("datum", "Datum"),
];

pub const DEREGISTRATION_FIELDS: &[FieldSpec] = &[
    text("namn", "Kortinnehavarens namn"),
    text("personnummer", "Personnummer"),
    text("kortnummer", "Kortnummer"),
    text("vardenhet_namn", "Vårdenhet"),
    FieldSpec {
        key: "vardenhet_hsaid",
        label: "Vårdenhetens HSA-id",
        field_type: FieldType::Text,
        requirement: Requirement::Optional,
    },
    FieldSpec {
        key: "klippt_kort",
        label: "Klippt kort mottaget",
        field_type: FieldType::YesNo,
        requirement: Requirement::Required,
    },
    text("vc_namn", "Verksamhetschef"),
    text("datum", "Datum"),
];

/// The AcroForm field that names the form id (`TJID-101` / `TJID-102`) where present.
pub const FORM_ID_FIELD: &str = "blankett";

/// The signature box printed on both forms; an order's is read (SPEC §2.2, `forms::signature`).
pub const SIGNATURE_LABEL: &str = "Underskrift";
/// The field name a signature reason, its crop and its verification use.
pub const SIGNATURE_KEY: &str = "underskrift";
