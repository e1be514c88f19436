-- The call's staging table; row_index numbers the rows of all files in order (clip_key = base + row_index).
CREATE OR REPLACE TEMP TABLE staging (
    row_index BIGINT, file_index INTEGER, subset VARCHAR, line BIGINT,
    tags_raw VARCHAR, youtube_id VARCHAR, time_start_raw VARCHAR, time_end_raw VARCHAR,
    time_start DOUBLE, time_end DOUBLE
)
