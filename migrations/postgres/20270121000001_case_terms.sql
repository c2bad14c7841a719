-- The staff pages' search index (issues 21 and 25): each case's folded words, one row each
-- (src/store/terms.rs), so that a search is a few range scans of this primary key instead of
-- a scan of every case's JSON. Terms hold only a-z and 0-9, compared bytewise (COLLATE "C")
-- so that a prefix is a range. Cases recorded before this table existed are indexed when the
-- store opens (`terms_indexed` = 0 until then); a purge deletes a case's terms with its
-- personal data.
CREATE TABLE case_terms (
    term    TEXT COLLATE "C" NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    PRIMARY KEY (term, case_id)
);
CREATE INDEX case_terms_case ON case_terms (case_id);
-- The person's name as KIV spells it, when KIV knew the person (searched, and shown beside a
-- name that differs).
ALTER TABLE cases ADD COLUMN kiv_name TEXT;
ALTER TABLE cases ADD COLUMN terms_indexed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cases_terms_unindexed ON cases (id) WHERE terms_indexed = 0;
-- A handed-out card's number is searched exactly: cases_card_number (initial migration).
