-- The outbox worker takes pending replies oldest first, 200 at a time. With only outbox_due
-- (status, next_attempt_at) SQLite sorted every pending row, whole reply text included, on
-- each pass: quadratic in a backlog. This index gives them in order.
CREATE INDEX outbox_pending ON outbox (status, created_at, id);
