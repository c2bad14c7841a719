//! The commands of the binary: the CLI, the daemon (`run`) and its driver loop, the `check`
//! command (`self_check`: tries every connection) and the ops endpoint.

pub mod cli;
pub mod daemon;
pub mod ops;
pub mod self_check;
