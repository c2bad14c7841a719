-- Emails whose KIV check waits for the directory (LDAP) to come back. Such an email is not in
-- `messages` yet and is not acknowledged at its source; its row goes in the same transaction
-- that records it. Staff see these rows in `cases waiting`, ops in tjid_ldap_waiting_emails.
CREATE TABLE kiv_waiting (
    source_ref      TEXT PRIMARY KEY,
    message_id      TEXT,
    sender          TEXT,
    subject         TEXT NOT NULL,
    first_seen_at   BIGINT NOT NULL,
    last_attempt_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT NOT NULL
);
