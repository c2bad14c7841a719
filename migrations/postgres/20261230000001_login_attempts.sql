-- Failed staff logins (issue 12): the lockout survives a restart and holds for every instance
-- on the same database. One row per failed attempt and key: `u:<user name>` (the account) and
-- `c:<client address>` (the client, behind a trusted proxy the address it forwarded). Rows
-- older than the lockout window are deleted when the next failure is recorded; a successful
-- login clears the account's rows.
CREATE TABLE login_attempts (
    key TEXT NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (key, at);
