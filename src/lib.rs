//! tjid-intake: reads the TjänsteID-service mailbox, reads the eTjänstekort forms in it, checks
//! them against KIV and the register of connected providers, and queues or rejects each case
//! with a Swedish reply. See SPEC.md for the contract and README.md for the layout.

pub mod app;
pub mod bounce;
pub mod case;
pub mod casework;
pub mod clock;
pub mod config;
pub mod directory;
pub mod domain;
pub mod file_watch;
pub mod forms;
pub mod imaging;
pub mod net;
pub mod ocr;
pub mod originals;
pub mod outbox;
pub mod pdf;
pub mod pipeline;
pub mod providers;
pub mod sink;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod web;

/// The human-readable, stable case number: `TJID-2026-000123`.
pub fn case_id(year: i64, number: i64) -> String {
    format!("TJID-{year}-{number:06}")
}
