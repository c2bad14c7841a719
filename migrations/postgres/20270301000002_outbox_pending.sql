-- The outbox's hot paths (a pass's claims, the due replies) read pending rows only (issue 25):
-- indexes over those alone, so that the sent replies (nearly all of the table) are not in
-- them. The dead row versions each settled reply leaves are cleared by the daemon itself
-- (`Store::tidy_outbox`, every 500 settled replies or 10 minutes), not by autovacuum.
CREATE INDEX outbox_pending_due ON outbox (created_at, id) WHERE status = 'pending';
CREATE INDEX outbox_pending_claimed ON outbox (claimed_by)
    WHERE status = 'pending' AND claimed_by IS NOT NULL;
