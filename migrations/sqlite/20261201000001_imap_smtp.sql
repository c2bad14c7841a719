-- Live mail (IMAP in, SMTP out). Portable DDL as in the initial migration.

-- Where the IMAP source stands in each mailbox it reads: a restart continues after last_uid,
-- and a new UIDVALIDITY means the server renumbered the folder (re-scan; Message-ID
-- deduplication keeps that from answering anything twice).
CREATE TABLE imap_state (
    mailbox      TEXT PRIMARY KEY,         -- user@host:port/folder
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Delivery reports (bounces) that came back about one of our replies, linked to its case.
-- The report itself is an ignored message (reason bounce); this row makes it visible on the case.
CREATE TABLE bounces (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    outbox_id  TEXT,                        -- the reply it reports on, when it could be told
    message    TEXT NOT NULL REFERENCES messages (id),
    action     TEXT,                        -- DSN Action: failed | delayed | …
    status     TEXT,                        -- DSN Status: 5.1.1 …
    at         BIGINT NOT NULL
);
CREATE INDEX bounces_case ON bounces (case_id);

-- The per-recipient rate limit counts recent replies to one address.
CREATE INDEX outbox_recipient_sent ON outbox (recipient, sent_at);
