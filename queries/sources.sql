-- The ingested files with their sha256, row count, subset and time.
SELECT source_id, path, sha256, rows, subset, ingested_at FROM sources ORDER BY source_id;
