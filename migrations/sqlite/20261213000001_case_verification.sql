-- Held for verification (SPEC §4.4, issue 9). `verify`: JSON array of the fields (or null for a
-- reason with no field) whose uncertain OCR reading a rejection rests on; not empty while the
-- case is held (state `held`, no reply yet), emptied when staff confirm. `field_boxes`: JSON
-- array of where each field was read on the scanned page ({field, page, left, top, right,
-- bottom}, fractions of the page), for the crops staff see. Erased with the fields by retention.
ALTER TABLE cases ADD COLUMN verify TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cases ADD COLUMN field_boxes TEXT NOT NULL DEFAULT '[]';
