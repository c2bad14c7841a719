-- Which attachment of the email a case's form was read from: its 0-based place among the
-- attachments (those of forwarded messages in place). With `pages` it lets the case page show
-- the form as it was sent. NULL for a form from the body, for no form, and for older cases
-- (those fall back to the attachment's name). Erased with the other fields by retention.
ALTER TABLE cases ADD COLUMN attachment_index BIGINT;
