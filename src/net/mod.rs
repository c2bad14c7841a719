//! Network plumbing shared by the mail backends: TLS set-up with rustls (ring provider).

pub mod tls;
