//! The pipeline stages, each a plain function over domain types: parse → extract (layout) →
//! check → decide → reply.

pub mod check;
pub mod decide;
pub mod extract;
pub mod ink;
pub mod layout;
pub mod notice;
pub mod parse;
pub mod reply;
