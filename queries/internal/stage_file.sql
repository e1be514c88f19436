-- Read one HVU annotation CSV as text into raw_csv, columns by name ($columns in the file's order); rowid keeps the file order (rowids in a transaction start at a large offset, so a row's index is rowid - min(rowid)).
CREATE OR REPLACE TEMP TABLE raw_csv AS
SELECT * FROM read_csv($path, header = true, all_varchar = true, delim = ',', quote = '"',
                       escape = '"', strict_mode = true, null_padding = false, auto_detect = false,
                       columns = $columns)
