//! The IMAP connection's state as ops see it (`/metrics`, `/readyz`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The IMAP connection as ops see it (the metrics export it as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnectionState {
    /// Not started, or stopped.
    Stopped = 0,
    Connecting = 1,
    /// Logged in and the folder selected (fetching, or waiting with IDLE or polling).
    Connected = 2,
    /// The last attempt failed; waiting before the next one.
    Reconnecting = 3,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Stopped => "stopped",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
        }
    }

    fn from_u8(v: u8) -> ConnectionState {
        match v {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::Connected,
            3 => ConnectionState::Reconnecting,
            _ => ConnectionState::Stopped,
        }
    }
}

/// Shared, cheap to read: the daemon sets it, `/metrics` reads it.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStatus(Arc<AtomicU8>);

impl ConnectionStatus {
    pub fn get(&self) -> ConnectionState {
        ConnectionState::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Sets the state; returns whether it changed (so that each change is logged once).
    pub(super) fn set(&self, state: ConnectionState) -> bool {
        crate::telemetry::set_imap_connected(state == ConnectionState::Connected);
        self.0.swap(state as u8, Ordering::Relaxed) != state as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_state_changes_are_reported_once() {
        let status = ConnectionStatus::default();
        assert_eq!(status.get(), ConnectionState::Stopped);
        assert!(status.set(ConnectionState::Connecting));
        assert!(!status.set(ConnectionState::Connecting));
        assert_eq!(status.get().as_str(), "connecting");
    }
}
