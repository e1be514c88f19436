-- The sides that split_members' CHECK constraint allows (a store made before select.csv allows two).
SELECT expression FROM duckdb_constraints()
WHERE table_name = 'split_members' AND constraint_type = 'CHECK';
