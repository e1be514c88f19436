-- Append raw_csv to the call's staging table, tagged with its file and subset; record_lines (registered by
-- ingest.py from the file's bytes) gives each row's physical line, right across blank lines and quoted newlines.
INSERT INTO staging
SELECT (SELECT count(*) FROM staging) + r.rowid - (SELECT min(rowid) FROM raw_csv) + 1,
       $file_index, $subset, l.line, r.Tags, r.youtube_id, r.time_start, r.time_end,
       TRY_CAST(r.time_start AS DOUBLE), TRY_CAST(r.time_end AS DOUBLE)
FROM raw_csv r
JOIN record_lines l ON l.record = r.rowid - (SELECT min(rowid) FROM raw_csv)
ORDER BY r.rowid;
DROP TABLE raw_csv
