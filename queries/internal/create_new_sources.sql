CREATE OR REPLACE TEMP TABLE new_sources (
    file_index INTEGER, source_id INTEGER, path VARCHAR, sha256 VARCHAR, rows BIGINT, subset VARCHAR
)
