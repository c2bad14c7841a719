//! The commands of the binary: the CLI, the daemon (`run`) and its driver loop, the `check`
//! command (`self_check`: tries every connection), the ops endpoint and the notifications to
//! systemd.

pub mod cli;
pub mod daemon;
pub mod ops;
pub mod providers_cli;
pub mod self_check;
pub mod systemd;
