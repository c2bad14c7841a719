//! The settings of the IMAP source (`[imap]`): owned here, gathered by `config`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::net::Security;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuth {
    Login,
    Plain,
    Xoauth2,
}

/// What happens to a message at the IMAP server once its outcome is committed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AfterAction {
    /// `move:FOLDER`: MOVE (or COPY + \Deleted + UID EXPUNGE) into FOLDER (UTF-8 name).
    Move(String),
    /// `flag:KEYWORD`: set \Seen and KEYWORD, and leave the message where it is.
    Flag(String),
}

impl TryFrom<String> for AfterAction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (verb, arg) = s.split_once(':').unwrap_or((s.as_str(), ""));
        let arg = arg.trim();
        match verb.trim() {
            "move" if !arg.is_empty() => Ok(AfterAction::Move(arg.to_string())),
            "flag"
                if !arg.is_empty()
                    && arg
                        .chars()
                        .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c)) =>
            {
                Ok(AfterAction::Flag(arg.to_string()))
            }
            "flag" if arg.is_empty() => Ok(AfterAction::Flag("$TjidDone".into())),
            _ => Err(format!("`{s}`: expected `move:FOLDER` or `flag:KEYWORD`")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ImapSettings {
    pub host: String,
    /// Default by `security`: 993 for tls, 143 otherwise.
    pub port: Option<u16>,
    pub security: Security,
    /// PEM file with the CA(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub auth: ImapAuth,
    /// For login/plain: the password, or better a file that holds it.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// For xoauth2: a file holding a fresh access token, or a command printing one.
    pub oauth_token_file: Option<PathBuf>,
    pub oauth_token_command: Option<String>,
    /// The folder read (UTF-8; encoded as IMAP modified UTF-7 on the wire).
    pub folder: String,
    pub processed: AfterAction,
    pub ignored: AfterAction,
    pub quarantined: AfterAction,
    /// Create the target folders at start-up when they are missing.
    pub create_folders: bool,
    /// Messages per UID FETCH.
    pub batch_size: usize,
    /// A larger message is not downloaded; it is recorded as quarantined from its header.
    pub max_message_bytes: Option<usize>,
    pub connect_timeout_secs: u64,
    /// Bound on every single IMAP command (a FETCH of one batch included).
    pub command_timeout_secs: u64,
    /// Wait with IDLE when the server offers it (else poll).
    pub idle: bool,
    /// IDLE is re-issued after this long (RFC 2177: at most 29 minutes).
    pub idle_renew_secs: u64,
    /// Polling interval when IDLE is off or missing.
    pub poll_interval_secs: u64,
    /// Reconnect back-off: first delay, doubling up to the cap, with ±50 % jitter.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_secs: u64,
    /// Several instances on one mailbox: the one holding the lease on the folder reads it.
    /// The holder renews every lease_secs / 3; another takes over once it has run out.
    pub lease_secs: u64,
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            host: String::new(),
            port: None,
            security: Security::Tls,
            ca_file: None,
            username: String::new(),
            auth: ImapAuth::Login,
            password: None,
            password_file: None,
            oauth_token_file: None,
            oauth_token_command: None,
            folder: "INBOX".into(),
            processed: AfterAction::Move("Behandlat".into()),
            ignored: AfterAction::Move("Ignorerat".into()),
            quarantined: AfterAction::Move("Karantän".into()),
            create_folders: true,
            batch_size: 50,
            max_message_bytes: None,
            connect_timeout_secs: 20,
            command_timeout_secs: 60,
            idle: true,
            idle_renew_secs: 25 * 60,
            poll_interval_secs: 60,
            reconnect_initial_ms: 1000,
            reconnect_max_secs: 300,
            lease_secs: 30,
        }
    }
}

impl ImapSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.security == Security::Tls {
            993
        } else {
            143
        })
    }
}

impl ImapSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let i = self;
        let mut p = Vec::new();
        if i.host.trim().is_empty() {
            p.push("imap.host: must be set when source.kind = \"imap\"".into());
        }
        if i.username.trim().is_empty() {
            p.push("imap.username: must be set".into());
        }
        match i.auth {
            ImapAuth::Login | ImapAuth::Plain => {
                if i.password.is_none() == i.password_file.is_none() {
                    p.push("imap.password / imap.password_file: set exactly one".into());
                }
            }
            ImapAuth::Xoauth2 => {
                if i.oauth_token_file.is_none() == i.oauth_token_command.is_none() {
                    p.push("imap.oauth_token_file / imap.oauth_token_command: set exactly one for xoauth2".into());
                }
            }
        }
        if let Some(f) = i.ca_file.as_ref().filter(|f| !f.is_file()) {
            p.push(format!("imap.ca_file: no such file: {}", f.display()));
        }
        if i.folder.trim().is_empty() {
            p.push("imap.folder: must not be empty".into());
        }
        if i.lease_secs < 2 {
            p.push("imap.lease_secs: must be at least 2".into());
        }
        for (key, action) in [
            ("processed", &i.processed),
            ("ignored", &i.ignored),
            ("quarantined", &i.quarantined),
        ] {
            if let AfterAction::Move(folder) = action {
                if folder == &i.folder {
                    p.push(format!(
                        "imap.{key}: cannot move into the folder that is read ({folder})"
                    ));
                }
            }
        }
        if i.batch_size == 0 {
            p.push("imap.batch_size: must be at least 1".into());
        }
        if i.connect_timeout_secs == 0 || i.command_timeout_secs == 0 {
            p.push("imap.connect_timeout_secs / command_timeout_secs: must be at least 1".into());
        }
        if i.idle_renew_secs == 0 || i.idle_renew_secs > 29 * 60 {
            p.push("imap.idle_renew_secs: must be between 1 and 1740 (29 minutes)".into());
        }
        if i.poll_interval_secs == 0 {
            p.push("imap.poll_interval_secs: must be at least 1".into());
        }
        if i.reconnect_initial_ms == 0 || i.reconnect_max_secs * 1000 < i.reconnect_initial_ms {
            p.push(
                "imap.reconnect_initial_ms / reconnect_max_secs: need 0 < initial <= max".into(),
            );
        }
        p
    }
}
