-- Staff web pages, the case lifecycle and retention (issue 5). Portable DDL as in the first
-- migration: TEXT ids, BIGINT epoch-millisecond times, 0/1 as BIGINT.

-- Staff who log in to the review pages. Passwords only as argon2id PHC strings.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      BIGINT NOT NULL,         -- 1: cannot log in, sessions end
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Login sessions. Only a SHA-256 of the cookie's token is stored, so a copy of the database
-- does not hand out live sessions.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users (username),
    csrf       TEXT NOT NULL,              -- the token every form of this session carries
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (username);

-- Cards handed out: a later deregistration with the same card number links to the order case.
CREATE TABLE known_cards (
    card_number        TEXT PRIMARY KEY,   -- 19 digits
    order_case         TEXT NOT NULL REFERENCES cases (id),
    personnummer       TEXT,               -- erased by retention
    handed_out_at      BIGINT NOT NULL,
    deregistered_case  TEXT,
    deregistered_at    BIGINT
);
CREATE INDEX known_cards_case ON known_cards (order_case);

-- The card number recorded when an order's card is handed out.
ALTER TABLE cases ADD COLUMN card_number TEXT;
-- Set when retention erased the personal fields; the row is then a minimal shell.
ALTER TABLE cases ADD COLUMN purged_at BIGINT;
ALTER TABLE messages ADD COLUMN purged_at BIGINT;
-- Set when staff asked for an ignored or quarantined email to be processed again.
ALTER TABLE messages ADD COLUMN reprocessed_at BIGINT;

CREATE INDEX cases_state ON cases (state, updated_at);
CREATE INDEX messages_outcome ON messages (outcome, received_at);
