-- Record one fact about the store (see store_meta in schema.sql).
INSERT OR REPLACE INTO store_meta VALUES ($key, $value);
