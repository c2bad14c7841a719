-- Staff lists at scale (issue 25): what the case lists filter and sort on is a column with an
-- index, not JSON read per row.
--
-- The unit HSA-id of the form (upper-case; NULL when the form has none), generated from
-- `fields`, so that every write of the fields (reception, verification, retention) keeps it.
ALTER TABLE cases ADD COLUMN unit_hsaid TEXT
    GENERATED ALWAYS AS (nullif(upper(json_extract(fields, '$.vardenhet_hsaid')), '')) VIRTUAL;
-- The reason codes of each case, one row each (kept by the store where `reasons` is written;
-- a retention shell keeps them).
CREATE TABLE case_reasons (
    case_id TEXT NOT NULL REFERENCES cases (id),
    code    TEXT NOT NULL,
    PRIMARY KEY (case_id, code)
);
INSERT OR IGNORE INTO case_reasons (case_id, code)
    SELECT c.id, json_extract(r.value, '$.code') FROM cases c, json_each(c.reasons) r
    WHERE json_extract(r.value, '$.code') IS NOT NULL;
-- A list is one state (or the closed ones), newest or oldest first: each page is a range of
-- one of these, and its count an index-only scan.
CREATE INDEX cases_state_created ON cases (state, created_at, id);
CREATE INDEX cases_state_kind_created ON cases (state, kind, created_at, id);
CREATE INDEX cases_state_unit_created ON cases (state, unit_hsaid, created_at, id);
CREATE INDEX cases_created ON cases (created_at, id);
CREATE INDEX cases_closed_created ON cases (created_at, id)
    WHERE state IN ('handed_out', 'deregistered', 'rejection_confirmed');
-- Retention finds what is due without stepping over the shells it left.
CREATE INDEX cases_unpurged ON cases (state, updated_at) WHERE purged_at IS NULL;
CREATE INDEX messages_unpurged ON messages (outcome, received_at) WHERE purged_at IS NULL;
-- Rejections purged before retention closed them leave Avvisade now (issue 25): closed, and
-- the audit says so.
INSERT INTO audit (id, case_id, at, actor, action, before, after, comment)
    SELECT lower(hex(randomblob(16))), id, purged_at, 'system', 'purged', 'rejected',
           'rejection_confirmed', NULL
    FROM cases WHERE state = 'rejected' AND purged_at IS NOT NULL;
UPDATE cases SET state = 'rejection_confirmed' WHERE state = 'rejected' AND purged_at IS NOT NULL;
