-- One fact about the store (see store_meta in schema.sql); no row when it was never recorded.
SELECT value FROM store_meta WHERE key = $key;
