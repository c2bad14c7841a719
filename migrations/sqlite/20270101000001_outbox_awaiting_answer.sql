-- Exactly once at the SMTP edge, second form: a reply is recorded as handed over just before
-- SMTP's final `.` (status `sent`, `sending_at` set until the server's answer is recorded);
-- one whose answer never comes is held in doubt for staff (Store::hold_replies_in_doubt).
--
-- A reply the first form left in doubt (pending, `sending_at` set) may have reached the
-- server: it is held for staff the same way instead of being sent again.
INSERT INTO audit (id, case_id, at, actor, action, before, after, comment)
SELECT 'in-doubt-' || id, case_id, sending_at, 'system', 'reply_held', 'pending', 'held',
       'in doubt: handed to the SMTP server by an earlier version without a recorded answer; it may have been delivered'
FROM outbox WHERE status = 'pending' AND sending_at IS NOT NULL;
UPDATE outbox
SET status = 'held',
    last_error = 'in doubt: handed to the SMTP server by an earlier version without a recorded answer; it may have been delivered',
    claimed_by = NULL, claimed_until = NULL, sending_at = NULL
WHERE status = 'pending' AND sending_at IS NOT NULL;

-- The outbox looks for replies awaiting an answer on every pass: few rows, a partial index.
CREATE INDEX outbox_awaiting_answer ON outbox (sending_at) WHERE sending_at IS NOT NULL;
