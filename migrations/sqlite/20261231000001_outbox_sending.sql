-- Exactly once at the SMTP edge (issue 13): a reply is marked with `sending_at` just before it
-- is handed to the SMTP server, and the mark is cleared when the attempt is recorded (sent,
-- retried, failed, held). A mark still set when the reply is taken again means the sender died
-- between handing it over and recording the answer: the server may have accepted it. Such a
-- reply "in doubt" goes out again only after `[outbox] in_doubt_resend_after_secs`.
ALTER TABLE outbox ADD COLUMN sending_at BIGINT;
