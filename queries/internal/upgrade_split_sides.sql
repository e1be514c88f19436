-- Bring split_members of a store made before select.csv existed up to the three sides of schema.sql.
-- DuckDB cannot alter a CHECK constraint, so the table is rebuilt, its rows kept, in one transaction
-- (the caller's).
CREATE TABLE split_members_three_sides (
    split   VARCHAR NOT NULL,
    clip_id VARCHAR NOT NULL,
    side    VARCHAR NOT NULL CHECK (side IN ('train', 'select', 'val')),
    action  VARCHAR NOT NULL,
    scene   VARCHAR NOT NULL
);
INSERT INTO split_members_three_sides SELECT split, clip_id, side, action, scene FROM split_members;
DROP TABLE split_members;
ALTER TABLE split_members_three_sides RENAME TO split_members;
