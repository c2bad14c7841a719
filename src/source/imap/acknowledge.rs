//! Acknowledging at the server: MOVE (or COPY, \Deleted and EXPUNGE) into the outcome's
//! folder, or a flag, as each message is committed; once the whole batch is settled its last
//! UID is remembered in the store.

use std::collections::BTreeMap;

use chrono::Utc;
use futures::TryStreamExt;

use super::AfterAction;
use super::{
    encode_folder_name, uid_set, Conn, ImapError, ImapSession, ImapSource, ServerFeatures,
};
use crate::case::EmailOutcome;
use crate::store::Store;

impl ImapSource {
    fn action(&self, ack: EmailOutcome) -> &AfterAction {
        match ack {
            EmailOutcome::Processed => &self.settings.processed,
            EmailOutcome::Ignored => &self.settings.ignored,
            EmailOutcome::Quarantined => &self.settings.quarantined,
        }
    }

    /// Closes the open batch, all of whose messages are settled: remembers its last UID.
    pub(super) async fn finish_batch(&self, c: &mut Conn, store: &Store) -> Result<(), ImapError> {
        let Some(batch) = c.batch.take() else {
            return Ok(());
        };
        c.position.last_uid = batch.max_uid;
        store
            .set_imap_position(&self.mailbox, c.position, Utc::now().timestamp_millis())
            .await
            .map_err(ImapError::Record)?;
        Ok(())
    }

    /// Moves or flags the recorded messages, grouped by what their outcome asks for. Flagged
    /// mail and mail moved after being handled (processed, ignored) is marked \Seen; moved
    /// quarantined mail stays unread, for the staff to look at.
    pub(super) async fn acknowledge_uids(
        &self,
        session: &mut ImapSession,
        features: ServerFeatures,
        acks: &[(u32, EmailOutcome)],
    ) -> Result<(), ImapError> {
        let mut groups: BTreeMap<(u8, String, bool), Vec<u32>> = BTreeMap::new();
        for (uid, ack) in acks {
            let key = match self.action(*ack) {
                AfterAction::Move(folder) => (0, folder.clone(), *ack != EmailOutcome::Quarantined),
                AfterAction::Flag(keyword) => (1, keyword.clone(), true),
            };
            groups.entry(key).or_default().push(*uid);
        }
        for ((kind, target, seen), uids) in groups {
            let set = uid_set(&uids);
            if kind == 1 {
                self.add_flags(session, &set, &format!("\\Seen {target}"))
                    .await?;
                continue;
            }
            if seen {
                // MOVE and COPY keep the flags.
                self.add_flags(session, &set, "\\Seen").await?;
            }
            let folder = encode_folder_name(&target);
            if features.r#move {
                self.bounded("UID MOVE", session.uid_mv(&set, &folder))
                    .await?;
                continue;
            }
            self.bounded("UID COPY", session.uid_copy(&set, &folder))
                .await?;
            self.delete(session, &set, features.uidplus).await?;
        }
        Ok(())
    }

    /// Marks the messages of `set` \Deleted and expunges them.
    pub(super) async fn delete(
        &self,
        session: &mut ImapSession,
        set: &str,
        uidplus: bool,
    ) -> Result<(), ImapError> {
        self.add_flags(session, set, "\\Deleted").await?;
        if uidplus {
            self.bounded("UID EXPUNGE", async {
                let stream = session.uid_expunge(set).await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        } else {
            // Without UIDPLUS only a plain EXPUNGE exists; it also removes messages others
            // marked \Deleted, which is what they asked for.
            self.bounded("EXPUNGE", async {
                let stream = session.expunge().await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        }
        Ok(())
    }

    /// Adds `flags` (e.g. `\Seen $Done`) to the messages of `set`.
    async fn add_flags(
        &self,
        session: &mut ImapSession,
        set: &str,
        flags: &str,
    ) -> Result<(), ImapError> {
        let query = format!("+FLAGS.SILENT ({flags})");
        self.bounded("UID STORE", async {
            let stream = session.uid_store(set, &query).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(())
    }
}
