-- Loop protection is for robots (issue 21): the rate limit counts and holds only the replies
-- the service sends by itself to incoming mail (`automatic` = 1). Notices and replies a member
-- of staff triggers (ordered, card ready, deregistered, overturned, after a verification) are
-- 0 and never held. Replies recorded before this column existed count as automatic, as they
-- were counted before.
ALTER TABLE outbox ADD COLUMN automatic BIGINT NOT NULL DEFAULT 1;
