CREATE OR REPLACE TEMP TABLE staging (
    file_index INTEGER, subset VARCHAR, line BIGINT,
    tags_raw VARCHAR, youtube_id VARCHAR, time_start_raw VARCHAR, time_end_raw VARCHAR,
    time_start DOUBLE, time_end DOUBLE
)
