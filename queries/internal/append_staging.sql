-- Append raw_csv to the call's staging table, tagged with its file and subset.
INSERT INTO staging
SELECT (SELECT count(*) FROM staging) + rowid - (SELECT min(rowid) FROM raw_csv) + 1,
       $file_index, $subset, rowid - (SELECT min(rowid) FROM raw_csv) + 2, Tags, youtube_id, time_start, time_end,
       TRY_CAST(time_start AS DOUBLE), TRY_CAST(time_end AS DOUBLE)
FROM raw_csv;
DROP TABLE raw_csv
