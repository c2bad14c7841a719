-- Portable DDL (SQLite and PostgreSQL): TEXT ids, BIGINT epoch-millisecond times, JSON as TEXT.

-- Every email seen, also the ignored and quarantined ones (kept for audit).
CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    source_ref     TEXT NOT NULL,          -- where it came from: maildir:<name>, file:<path>, imap:<validity>:<uid>
    message_id     TEXT,                   -- with angle brackets
    content_hash   TEXT NOT NULL,          -- SHA-256 of the raw message
    received_at    BIGINT NOT NULL,
    email_date     TEXT,                   -- the Date header, RFC 3339
    sender         TEXT,
    subject        TEXT NOT NULL,
    headers        TEXT NOT NULL,          -- the header block as received
    outcome        TEXT NOT NULL,          -- processed | ignored | quarantined
    ignored_reason TEXT,
    error          TEXT                    -- why it was quarantined
);
CREATE UNIQUE INDEX messages_source_ref ON messages (source_ref);
CREATE INDEX messages_message_id ON messages (message_id);

-- Case numbers TJID-YYYY-NNNNNN: one counter per year.
CREATE TABLE case_numbers (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,          -- TJID-2026-000123
    message     TEXT NOT NULL REFERENCES messages (id),
    position    BIGINT NOT NULL,           -- order of the form in the email
    kind        TEXT NOT NULL,             -- order | deregistration | unknown
    decision    TEXT NOT NULL,             -- queued | rejected
    state       TEXT NOT NULL,             -- lifecycle state, starts as the decision
    fields      TEXT NOT NULL,             -- JSON object, normalised values
    reasons     TEXT NOT NULL,             -- JSON array of {code, field}
    warnings    TEXT NOT NULL,             -- JSON array of {code, field}
    attachment  TEXT,
    pages       TEXT NOT NULL,             -- JSON array of page numbers
    manager_mail TEXT,
    holder_mail TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX cases_message ON cases (message);
CREATE INDEX cases_decision ON cases (decision, created_at);

-- Replies to send. Written in the same transaction as the cases they answer.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,      -- <case id>-<n>
    case_id         TEXT NOT NULL REFERENCES cases (id),
    message_id      TEXT NOT NULL,         -- the reply's own Message-ID, stable across resends
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    raw             TEXT NOT NULL,         -- the whole RFC 5322 message (7-bit)
    status          TEXT NOT NULL,         -- pending | sent | failed
    attempts        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_case ON outbox (case_id);

-- Each delivery attempt.
CREATE TABLE delivery_attempts (
    id        TEXT PRIMARY KEY,
    outbox_id TEXT NOT NULL REFERENCES outbox (id),
    at        BIGINT NOT NULL,
    ok        BIGINT NOT NULL,             -- 1 or 0
    detail    TEXT
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id);

-- Everything that happened to a case: who, when, what, before → after.
CREATE TABLE audit (
    id        TEXT PRIMARY KEY,
    case_id   TEXT NOT NULL REFERENCES cases (id),
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,               -- system or a staff user
    action    TEXT NOT NULL,
    before    TEXT,
    after     TEXT,
    comment   TEXT
);
CREATE INDEX audit_case ON audit (case_id, at);
