-- Read one HVU annotation CSV as text into raw_csv; rowid keeps the file order (line = rowid - min(rowid) + 2; rowids in a transaction start at a large offset).
CREATE OR REPLACE TEMP TABLE raw_csv AS
SELECT * FROM read_csv($path, header = true, all_varchar = true, delim = ',', quote = '"',
                       escape = '"', strict_mode = true, null_padding = false, auto_detect = false,
                       columns = {'Tags': 'VARCHAR', 'youtube_id': 'VARCHAR', 'time_start': 'VARCHAR', 'time_end': 'VARCHAR'})
