-- Poison protection: an email's processing is noted here before it starts and the row is
-- removed once the email is settled (recorded, or waiting for KIV). A row that is still there
-- when the email comes round again means the process died while handling it (an abort under a
-- memory limit, a kill); after two such attempts the email is quarantined without being read
-- again, so one email cannot keep the daemon in a crash loop.
CREATE TABLE processing_attempts (
    source_ref    TEXT PRIMARY KEY,
    content_hash  TEXT NOT NULL,
    attempts      BIGINT NOT NULL,
    first_at      BIGINT NOT NULL,
    last_at       BIGINT NOT NULL
);
