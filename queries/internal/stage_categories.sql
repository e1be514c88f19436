-- Read the categories file as text into raw_categories, columns by name ($columns in the file's order; rowid keeps the file order).
CREATE OR REPLACE TEMP TABLE raw_categories AS
SELECT * FROM read_csv($path, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
                       strict_mode = true, auto_detect = false, columns = $columns)
