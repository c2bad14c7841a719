//! Reading one batch: UIDs, sizes and flags first, then the bodies of the messages to read;
//! messages recorded before and oversized ones (recorded from their header) are acknowledged
//! at once.

use std::collections::BTreeMap;

use futures::TryStreamExt;

use super::AfterAction;
use super::{source_ref, uid_set, Batch, Conn, ImapError, ImapSession, ImapSource};
use crate::case::EmailOutcome;
use crate::source::Input;
use crate::store::Store;

impl ImapSource {
    fn keywords(&self) -> Vec<String> {
        let s = &self.settings;
        [&s.processed, &s.ignored, &s.quarantined]
            .into_iter()
            .filter_map(|a| match a {
                AfterAction::Flag(k) => Some(k.clone()),
                AfterAction::Move(_) => None,
            })
            .collect()
    }

    /// Fetches at most one batch of new messages and opens it in `c.batch` (left `None` when
    /// the folder is caught up). Returns the messages to read.
    pub(super) async fn fetch_round(
        &self,
        c: &mut Conn,
        store: &Store,
    ) -> Result<Vec<Input>, ImapError> {
        let Conn {
            session,
            position,
            features,
            ..
        } = c;
        let record_error = ImapError::Record;
        // UIDs, sizes and flags first: cheap, and lets us leave large messages on the server.
        let range = format!("{}:*", position.last_uid.saturating_add(1));
        let metas = self
            .bounded("UID FETCH", async {
                let stream = session.uid_fetch(&range, "(UID RFC822.SIZE FLAGS)").await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        let keywords = self.keywords();
        let mut new: Vec<(u32, u32, bool)> = metas
            .iter()
            .filter_map(|f| {
                let uid = f.uid?;
                // `n:*` always returns the last message, even when its UID is below n.
                if uid <= position.last_uid {
                    return None;
                }
                let done = f.flags().any(|flag| match flag {
                    async_imap::types::Flag::Custom(k) => {
                        keywords.iter().any(|w| w.eq_ignore_ascii_case(&k))
                    }
                    _ => false,
                });
                Some((uid, f.size.unwrap_or(0), done))
            })
            .collect();
        drop(metas);
        new.sort_unstable();
        new.truncate(self.settings.batch_size);
        let Some(&(max_uid, _, _)) = new.last() else {
            return Ok(Vec::new());
        };

        let wanted: Vec<u32> = new
            .iter()
            .filter(|(_, size, done)| !done && (*size as usize) <= self.max_message_bytes)
            .map(|(uid, _, _)| *uid)
            .collect();
        let oversized: Vec<u32> = new
            .iter()
            .filter(|(_, size, done)| !done && (*size as usize) > self.max_message_bytes)
            .map(|(uid, _, _)| *uid)
            .collect();

        let mut bodies: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        if !wanted.is_empty() {
            let set = uid_set(&wanted);
            let fetched = self
                .bounded("UID FETCH BODY.PEEK[]", async {
                    let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                    stream.try_collect::<Vec<_>>().await
                })
                .await?;
            for f in &fetched {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    bodies.insert(uid, body.to_vec());
                }
            }
        }

        let mut acks: Vec<(u32, EmailOutcome)> = Vec::new();
        let mut inputs = Vec::new();
        for uid in &wanted {
            let source_ref = source_ref(position.uid_validity, *uid);
            if let Some(outcome) = store
                .source_outcome(&source_ref)
                .await
                .map_err(record_error)?
            {
                // Committed before the connection (or the daemon) went down: acknowledge only.
                acks.push((
                    *uid,
                    EmailOutcome::parse(&outcome).unwrap_or(EmailOutcome::Processed),
                ));
                continue;
            }
            match bodies.remove(uid) {
                Some(raw) => inputs.push(Input {
                    display: source_ref.clone(),
                    source_ref,
                    raw,
                    oversized: None,
                }),
                // Expunged by someone else between the two FETCHes: nothing to record.
                None => tracing::info!(uid = *uid, "message vanished before it could be read"),
            }
        }
        for uid in &oversized {
            inputs.push(self.oversized(session, position.uid_validity, *uid).await?);
        }

        // Messages recorded before are committed already: acknowledge them now, not only once
        // the batch is settled.
        self.acknowledge_uids(session, *features, &acks).await?;
        c.batch = Some(Batch { max_uid });
        Ok(inputs)
    }

    /// A message above the size limit is not downloaded: its header alone goes on, and the
    /// pipeline quarantines it unread (`Input::oversized`).
    async fn oversized(
        &self,
        session: &mut ImapSession,
        validity: u32,
        uid: u32,
    ) -> Result<Input, ImapError> {
        let set = uid.to_string();
        let fetched = self
            .bounded("UID FETCH BODY.PEEK[HEADER]", async {
                let stream = session
                    .uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[HEADER])")
                    .await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        let header = fetched
            .iter()
            .find_map(|f| f.header().map(<[u8]>::to_vec))
            .unwrap_or_default();
        let size = fetched.iter().find_map(|f| f.size).unwrap_or(0);
        tracing::warn!(uid, size, "message too large; quarantined without download");
        let source_ref = source_ref(validity, uid);
        Ok(Input {
            display: source_ref.clone(),
            source_ref,
            raw: header,
            oversized: Some(u64::from(size)),
        })
    }
}
