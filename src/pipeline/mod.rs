//! The pipeline stages, each a plain function over domain types: parse → extract (forms::layout) →
//! check → decide → reply.

pub mod check;
pub mod decide;
pub mod extract;
pub mod notice;
pub mod parse;
pub mod reply;
mod settings;
pub mod worker;

pub use settings::{IntakeSettings, LimitSettings};
