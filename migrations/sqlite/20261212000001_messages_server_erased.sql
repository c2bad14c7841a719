-- Retention of mail read over IMAP: when its personal data is erased here, the message is also
-- removed from the server's folders. Set once that succeeded; until then each purge tries again.
ALTER TABLE messages ADD COLUMN server_erased_at INTEGER;
