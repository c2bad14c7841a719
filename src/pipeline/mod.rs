//! The pipeline: its stages, each a plain function over domain types (parse → extract
//! (forms::layout) → check → decide → reply), and the engine that runs them over emails
//! (`engine`: one email; `flow`: many at once, with their limits; `record`: the outcome
//! written; `events`: what ops see of it).

pub mod check;
pub mod decide;
mod engine;
mod events;
pub mod extract;
mod flow;
pub mod parse;
mod record;
pub mod reply;
mod settings;
pub mod worker;

pub use engine::{log_token, poison_error, Analysis, Intake, IntakeParts};
pub use flow::{BatchReport, Order, Settled, WaitingForKiv, ORDER_PATIENCE};
pub use record::{CaseOutcome, DryRun, Outcome, Recorder};
pub use settings::{IntakeSettings, LimitSettings};
