-- Leases between instances (issue 11): a named lease is held by one instance until it expires
-- (e.g. the right to read the IMAP mailbox). Nothing personal; not copied by migrate-store.
CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
