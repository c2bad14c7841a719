-- A reply held back by the per-recipient rate limit can be released by staff: it goes out
-- once more through the outbox, past the limit. Who released it is kept here (and in the
-- audit trail); NULL for every reply that was never held.
ALTER TABLE outbox ADD COLUMN released_by TEXT;
