-- Append raw_csv to the call's staging table, tagged with its file and subset; record_lines (registered by
-- ingest.py from the file's bytes) gives each row's physical line, right across blank lines and quoted newlines.
-- The first rowid and the rows already staged are computed once (in the join condition they made a nested loop).
INSERT INTO staging
WITH base AS (
    SELECT min(rowid) AS first_rowid, (SELECT count(*) FROM staging) AS staged FROM raw_csv
), numbered AS (
    SELECT r.rowid - base.first_rowid AS record, base.staged, r.Tags, r.youtube_id, r.time_start, r.time_end
    FROM raw_csv r CROSS JOIN base
)
SELECT n.staged + n.record + 1, $file_index, $subset, l.line, n.Tags, n.youtube_id, n.time_start, n.time_end,
       TRY_CAST(n.time_start AS DOUBLE), TRY_CAST(n.time_end AS DOUBLE)
FROM numbered n
JOIN record_lines l USING (record)
ORDER BY n.record;
DROP TABLE raw_csv
