//! Waiting for new mail: IDLE when the server offers it, else polling with NOOP.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use tokio::sync::watch;

use super::wait_stop;
use super::{Conn, ImapError, ImapSession, ImapSource};

impl ImapSource {
    /// Waits for new mail: IDLE when the server has it (and it is on), else the poll interval.
    pub async fn wait(&self, stop: &mut watch::Receiver<bool>) {
        let mut conn = self.conn.lock().await;
        let Some(mut c) = conn.take() else {
            return;
        };
        // Mail that arrived while we fetched or moved was announced then: look again before
        // waiting, or it would wait for the next event.
        if has_news(&c.session.unsolicited_responses) {
            *conn = Some(c);
            return;
        }
        let waited = if c.features.idle && self.settings.idle {
            match self.idle(c.session, stop).await {
                Ok(session) => Ok(Conn { session, ..c }),
                Err(e) => Err(e),
            }
        } else {
            if !c.polling_logged {
                tracing::info!(
                    interval_s = self.settings.poll_interval_secs,
                    "IMAP server without IDLE (or IDLE off): polling"
                );
                c.polling_logged = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.settings.poll_interval_secs)) => {}
                _ = wait_stop(stop) => {}
            }
            match self.bounded("NOOP", c.session.noop()).await {
                Ok(()) => Ok(c),
                Err(e) => Err(e),
            }
        };
        match waited {
            Ok(c) => *conn = Some(c),
            Err(e) => self.lost(&mut conn, e),
        }
    }

    /// Waits with IDLE until the server reports a change, the renewal time passes, or the
    /// daemon stops; then ends IDLE and gives the session back.
    async fn idle(
        &self,
        session: ImapSession,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<ImapSession, ImapError> {
        let renew = Duration::from_secs(self.settings.idle_renew_secs);
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        self.bounded("IDLE", handle.init()).await?;
        // An EXISTS sent before the server's "+ idling" goes to the unsolicited channel, not
        // to the wait below: end IDLE at once then.
        if has_news(&unsolicited) {
            return self.bounded("DONE", handle.done()).await;
        }
        let waited = {
            let (wait, _interrupt) = handle.wait_with_timeout(renew);
            // The library's own time-out restarts on every keep-alive: bound the whole wait.
            tokio::select! {
                r = tokio::time::timeout(renew, wait) => match r {
                    Ok(Ok(IdleResponse::NewData(_))) => Ok(true),
                    Ok(Ok(_)) | Err(_) => Ok(false),
                    Ok(Err(source)) => Err(ImapError::Command { command: "IDLE", source }),
                },
                _ = wait_stop(shutdown) => Ok(false),
            }
        };
        waited?;
        self.bounded("DONE", handle.done()).await
    }
}

/// Empties the unsolicited-responses channel; tells whether the server announced new mail.
pub(super) fn has_news(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
    let mut news = false;
    while let Ok(r) = rx.try_recv() {
        news |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    news
}
