-- PostgreSQL schema: the SQLite migrations up to 20261213000001 (migrations/sqlite) in one, plus
-- the outbox claim of 20261220000001_outbox_claim. Same tables, columns and meanings; the
-- differences are said where they are. JSON stays TEXT (byte-identical to what SQLite holds,
-- so a migrated database reads the same); searches go through `::jsonb` with expression indexes.

CREATE TABLE messages (
    id               TEXT COLLATE "C" PRIMARY KEY,
    source_ref       TEXT COLLATE "C" NOT NULL,
    message_id       TEXT COLLATE "C",
    content_hash     TEXT COLLATE "C" NOT NULL,
    received_at      BIGINT NOT NULL,
    email_date       TEXT COLLATE "C",
    sender           TEXT COLLATE "C",
    subject          TEXT COLLATE "C" NOT NULL,
    headers          TEXT COLLATE "C" NOT NULL,
    outcome          TEXT COLLATE "C" NOT NULL,
    ignored_reason   TEXT COLLATE "C",
    error            TEXT COLLATE "C",
    purged_at        BIGINT,
    reprocessed_at   BIGINT,
    server_erased_at BIGINT
);
CREATE UNIQUE INDEX messages_source_ref ON messages (source_ref);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_outcome ON messages (outcome, received_at);

-- Case numbers TJID-YYYY-NNNNNN: one counter row per year, taken with UPDATE … RETURNING inside
-- the recording transaction (gap-free; see store/postgres.rs).
CREATE TABLE case_numbers (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE cases (
    id               TEXT COLLATE "C" PRIMARY KEY,
    message          TEXT COLLATE "C" NOT NULL REFERENCES messages (id),
    position         BIGINT NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    decision         TEXT COLLATE "C" NOT NULL,
    state            TEXT COLLATE "C" NOT NULL,
    fields           TEXT COLLATE "C" NOT NULL,
    reasons          TEXT COLLATE "C" NOT NULL,
    warnings         TEXT COLLATE "C" NOT NULL,
    attachment       TEXT COLLATE "C",
    pages            TEXT COLLATE "C" NOT NULL,
    manager_mail     TEXT COLLATE "C",
    holder_mail      TEXT COLLATE "C",
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    card_number      TEXT COLLATE "C",
    purged_at        BIGINT,
    attachment_index BIGINT,
    verify           TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    field_boxes      TEXT COLLATE "C" NOT NULL DEFAULT '[]'
);
CREATE INDEX cases_message ON cases (message);
CREATE INDEX cases_decision ON cases (decision, created_at);
CREATE INDEX cases_state ON cases (state, updated_at);
CREATE INDEX cases_card_number ON cases (card_number);
-- The staff search and filters (SQLite uses json_extract on the same TEXT).
CREATE INDEX cases_personnummer ON cases (((fields::jsonb) ->> 'personnummer'));
CREATE INDEX cases_unit_hsaid ON cases ((upper((fields::jsonb) ->> 'vardenhet_hsaid')));
CREATE INDEX cases_kortnummer ON cases (((fields::jsonb) ->> 'kortnummer'));
CREATE INDEX cases_unit_name ON cases (((fields::jsonb) ->> 'vardenhet_namn'));

CREATE TABLE outbox (
    id              TEXT COLLATE "C" PRIMARY KEY,
    case_id         TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    message_id      TEXT COLLATE "C" NOT NULL,
    sender          TEXT COLLATE "C" NOT NULL,
    recipient       TEXT COLLATE "C" NOT NULL,
    subject         TEXT COLLATE "C" NOT NULL,
    raw             TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,         -- pending | sent | failed | held
    attempts        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT COLLATE "C",
    released_by     TEXT COLLATE "C",
    -- Which store instance took the reply to send it, and until when (see take_due_replies).
    claimed_by      TEXT COLLATE "C",
    claimed_until   BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_case ON outbox (case_id);
CREATE INDEX outbox_recipient_sent ON outbox (recipient, sent_at);
CREATE INDEX outbox_pending ON outbox (status, created_at, id);

CREATE TABLE delivery_attempts (
    id        TEXT COLLATE "C" PRIMARY KEY,
    outbox_id TEXT COLLATE "C" NOT NULL REFERENCES outbox (id),
    at        BIGINT NOT NULL,
    ok        BIGINT NOT NULL,
    detail    TEXT COLLATE "C"
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id);

-- `seq` stands in for SQLite's rowid: the audit trail of one instant keeps its insertion order.
CREATE TABLE audit (
    id        TEXT COLLATE "C" PRIMARY KEY,
    case_id   TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    at        BIGINT NOT NULL,
    actor     TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    before    TEXT COLLATE "C",
    after     TEXT COLLATE "C",
    comment   TEXT COLLATE "C",
    seq       BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX audit_case ON audit (case_id, at, seq);

CREATE TABLE kiv_waiting (
    source_ref      TEXT COLLATE "C" PRIMARY KEY,
    message_id      TEXT COLLATE "C",
    sender          TEXT COLLATE "C",
    subject         TEXT COLLATE "C" NOT NULL,
    first_seen_at   BIGINT NOT NULL,
    last_attempt_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT COLLATE "C" NOT NULL
);

CREATE TABLE users (
    username      TEXT COLLATE "C" PRIMARY KEY,
    display_name  TEXT COLLATE "C" NOT NULL,
    password_hash TEXT COLLATE "C" NOT NULL,
    disabled      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    username   TEXT COLLATE "C" NOT NULL REFERENCES users (username),
    csrf       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (username);

CREATE TABLE known_cards (
    card_number        TEXT COLLATE "C" PRIMARY KEY,
    order_case         TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    personnummer       TEXT COLLATE "C",
    handed_out_at      BIGINT NOT NULL,
    deregistered_case  TEXT COLLATE "C",
    deregistered_at    BIGINT
);
CREATE INDEX known_cards_case ON known_cards (order_case);

CREATE TABLE imap_state (
    mailbox      TEXT COLLATE "C" PRIMARY KEY,
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE bounces (
    id         TEXT COLLATE "C" PRIMARY KEY,
    case_id    TEXT COLLATE "C" NOT NULL REFERENCES cases (id),
    outbox_id  TEXT COLLATE "C",
    message    TEXT COLLATE "C" NOT NULL REFERENCES messages (id),
    action     TEXT COLLATE "C",
    status     TEXT COLLATE "C",
    at         BIGINT NOT NULL
);
CREATE INDEX bounces_case ON bounces (case_id);
