-- The store's tables (see README "Schema"). Idempotent: run at every read-write open, before views.sql.
-- Tags and clips are keyed by small integers internally; the views present names.
CREATE TABLE IF NOT EXISTS sources (
    source_id   INTEGER NOT NULL,
    path        VARCHAR NOT NULL,
    sha256      VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    subset      VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    tag_id   INTEGER NOT NULL,
    tag      VARCHAR NOT NULL,
    category VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS clips (
    clip_key   INTEGER NOT NULL,
    clip_id    VARCHAR NOT NULL,   -- youtube_id || '_' || time_start || '_' || time_end
    youtube_id VARCHAR NOT NULL,
    time_start DOUBLE NOT NULL,
    time_end   DOUBLE NOT NULL,
    subset     VARCHAR NOT NULL,
    source_id  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS clip_tag_ids (
    clip_key INTEGER NOT NULL,
    tag_id   INTEGER NOT NULL,
    pos      SMALLINT NOT NULL     -- 1-based position in the original Tags string
);
-- Materialised at each ingest, per subset, so one action's rows read in milliseconds.
CREATE TABLE IF NOT EXISTS pair_counts (
    subset    VARCHAR NOT NULL,
    action_id INTEGER NOT NULL,
    tag_id    INTEGER NOT NULL,
    n_both    BIGINT NOT NULL
);
-- Every (tag, clip) again, ordered by tag: reading one tag's clips skips the rest of the table
-- (DuckDB's zone maps), which halves the TUI's clips-of-a-pair query. Rebuilt at each ingest.
CREATE TABLE IF NOT EXISTS tag_clip_ids (
    tag_id   INTEGER NOT NULL,
    clip_key INTEGER NOT NULL
);
-- A store from before tag_clip_ids existed gets it filled at its first read-write open.
INSERT INTO tag_clip_ids
SELECT tag_id, clip_key FROM clip_tag_ids
WHERE NOT EXISTS (SELECT 1 FROM tag_clip_ids)
ORDER BY tag_id, clip_key;
CREATE TABLE IF NOT EXISTS tag_subset_counts (
    subset  VARCHAR NOT NULL,
    tag_id  INTEGER NOT NULL,
    n_clips BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotations (
    annotator   VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,
    tag         VARCHAR NOT NULL,
    category    VARCHAR NOT NULL,
    answer      VARCHAR NOT NULL CHECK (answer IN ('necessary', 'not_necessary', 'unsure')),
    note        VARCHAR,
    answered_at TIMESTAMP NOT NULL,
    source      VARCHAR NOT NULL,  -- 'prompt', 'tui' or the imported file name
    PRIMARY KEY (annotator, action, tag)
);
CREATE TABLE IF NOT EXISTS annotation_events (
    annotator   VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,
    tag         VARCHAR NOT NULL,
    category    VARCHAR NOT NULL,
    answer      VARCHAR NOT NULL,
    note        VARCHAR,
    answered_at TIMESTAMP NOT NULL,
    source      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS split_members (
    split   VARCHAR NOT NULL,
    clip_id VARCHAR NOT NULL,
    side    VARCHAR NOT NULL CHECK (side IN ('train', 'select', 'val')),
    action  VARCHAR NOT NULL,
    scene   VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS splits (
    split      VARCHAR NOT NULL,
    variant    VARCHAR NOT NULL,
    out_dir    VARCHAR NOT NULL,
    manifest   JSON NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Video files found by `hvuaudit videos scan` (docs/videos.md). One row per file under a scanned folder
-- (root, absolute; path, relative to it, '/'-separated). A rescan keeps the probe of an unchanged file
-- (same size and mtime) and forgets it for a changed one. problem: NULL, or why the file cannot be used
-- (an empty file at scan time; cannot be opened, no video stream, no frame after --probe).
CREATE TABLE IF NOT EXISTS video_files (
    root       VARCHAR NOT NULL,
    path       VARCHAR NOT NULL,
    size       BIGINT NOT NULL,
    mtime      DOUBLE NOT NULL,
    scanned_at TIMESTAMP NOT NULL,
    probed_at  TIMESTAMP,
    duration   DOUBLE,
    fps        DOUBLE,
    frames     BIGINT,
    width      INTEGER,
    height     INTEGER,
    problem    VARCHAR
);
-- The folders `videos scan` was given, with the --name-template that a rescan without one reuses.
CREATE TABLE IF NOT EXISTS video_roots (
    root          VARCHAR NOT NULL,
    name_template VARCHAR,
    scanned_at    TIMESTAMP NOT NULL
);
-- Which clip each file is, and under which naming scheme (a whole video by YouTube id serves every clip of
-- that video, cut at the clip's times: whole_video).
CREATE TABLE IF NOT EXISTS clip_videos (
    clip_key    INTEGER NOT NULL,
    root        VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    scheme      VARCHAR NOT NULL,
    whole_video BOOLEAN NOT NULL
);
-- Facts about the store itself. 'views_sha256': the views.sql its views were last made from.
CREATE TABLE IF NOT EXISTS store_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
