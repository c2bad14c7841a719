//! Test and benchmark tooling of tjid-intake, kept out of the production crate: a MIME writer
//! for test mail ([`mime`]) and the filled forms in the layouts providers send
//! ([`pdf_writer`]). Used by the tests, the examples (fixture generators, benchmarks) and
//! nothing the binary runs; the crate is a dev-dependency of `tjid-intake` only.

pub mod mime;
pub mod pdf_writer;
