//! Retention on the server: removing expired messages by Message-ID.

use std::time::Duration;

use super::AfterAction;
use super::{encode_folder_name, uid_set, ImapError, ImapSource};

impl ImapSource {
    /// Retention: removes the messages with these Message-IDs from the watched folder and from
    /// every folder mail is moved to after its outcome, so that expired personal data does not
    /// stay on the mail server. A folder that does not exist is passed over. Returns how many
    /// messages were removed.
    pub async fn erase(&self, message_ids: &[String]) -> Result<usize, ImapError> {
        if message_ids.is_empty() {
            return Ok(0);
        }
        let mut session = self.connect().await?;
        let caps = self.bounded("CAPABILITY", session.capabilities()).await?;
        let uidplus = caps.has_str("UIDPLUS");
        let s = &self.settings;
        let mut folders = vec![s.folder.clone()];
        for action in [&s.processed, &s.ignored, &s.quarantined] {
            if let AfterAction::Move(folder) = action {
                if !folders.contains(folder) {
                    folders.push(folder.clone());
                }
            }
        }
        let mut removed = 0;
        for folder in folders {
            let name = encode_folder_name(&folder);
            if self.bounded("SELECT", session.select(&name)).await.is_err() {
                continue;
            }
            let mut uids = Vec::new();
            for id in message_ids {
                // A quoted string: a Message-ID with a quote or backslash is not searched for.
                if id.contains(['"', '\\', '\r', '\n']) {
                    continue;
                }
                let query = format!("HEADER Message-ID \"{id}\"");
                uids.extend(
                    self.bounded("UID SEARCH", session.uid_search(&query))
                        .await?,
                );
            }
            if uids.is_empty() {
                continue;
            }
            uids.sort_unstable();
            uids.dedup();
            self.delete(&mut session, &uid_set(&uids), uidplus).await?;
            removed += uids.len();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        Ok(removed)
    }
}
