-- Taking a reply to send (issue 11): the outbox worker claims the due replies it sends, so that
-- two instances on one database (PostgreSQL) never send the same one. `claimed_by` names the
-- store instance, `claimed_until` lets another instance take the reply if the first died.
-- SQLite has one process writing, but keeps the same columns so the contract is the same.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
