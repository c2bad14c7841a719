-- The register of connected care providers, kept by staff (issue 22, SPEC §3.2). Keyed as the
-- CSV register: 10 digits for an organisation number, 12 for a sole trader's personnummer.
-- An empty table is seeded once from [providers] csv.
CREATE TABLE providers (
    key        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- The hälso- och sjukvårdskansli the application came through.
    kansli     TEXT NOT NULL DEFAULT '',
    note       TEXT NOT NULL DEFAULT '',
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);
-- When each provider is connected: from a date (YYYY-MM-DD), until a date (exclusive) or open.
-- A disconnection ends the open period, a new connection opens another; none is deleted, so an
-- email is judged by the register as it stood on its date.
CREATE TABLE provider_periods (
    key               TEXT NOT NULL REFERENCES providers (key),
    connected_from    TEXT NOT NULL,
    disconnected_from TEXT,
    PRIMARY KEY (key, connected_from)
);
-- Who changed the register, when, what and why (the comment is required).
CREATE TABLE provider_events (
    id      TEXT PRIMARY KEY,
    key     TEXT NOT NULL REFERENCES providers (key),
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    comment TEXT NOT NULL
);
CREATE INDEX provider_events_key ON provider_events (key, at);
