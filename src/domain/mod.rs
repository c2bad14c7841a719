//! Validated domain values ("parse, don't validate").
//!
//! Every type in this module can only be built through its `parse` function, so a value of
//! the type always follows its format rule (SPEC §2.4). Parse errors say *why* a value was
//! refused but never carry the value itself, because it may be personal data.

pub mod card;
pub mod contact;
pub mod date;
pub mod hsaid;
pub mod luhn;
pub mod orgnr;
pub mod personnummer;
pub mod text;

pub use card::CardNumber;
pub use contact::{Email, Mobile};
pub use date::{format_iso, parse_form_date, within_date_window};
pub use hsaid::HsaId;
pub use luhn::{luhn_check_digit, luhn_valid};
pub use orgnr::{OrgNr, ProviderId};
pub use personnummer::Personnummer;
pub use text::collapse_ws;

/// Why a value does not follow its format rule. Never carries the value itself (it may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);
