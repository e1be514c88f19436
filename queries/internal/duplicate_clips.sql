-- Clips (youtube_id, time_start, time_end) that appear twice in this call or are already stored.
WITH keyed AS (
    SELECT file_index, line, youtube_id, time_start, time_end FROM staging
), dup_in_call AS (
    SELECT youtube_id, time_start, time_end,
           list(file_index ORDER BY file_index, line) AS file_indexes,
           list(line ORDER BY file_index, line) AS lines
    FROM keyed GROUP BY ALL HAVING count(*) > 1
), dup_in_store AS (
    SELECT k.youtube_id, k.time_start, k.time_end, [k.file_index] AS file_indexes, [k.line] AS lines
    FROM keyed k
    JOIN clips c ON c.youtube_id = k.youtube_id AND c.time_start = k.time_start AND c.time_end = k.time_end
)
SELECT *, file_indexes[1] AS first_file, lines[1] AS first_line FROM (
    SELECT *, false AS in_store FROM dup_in_call
    UNION ALL
    SELECT *, true FROM dup_in_store
)
-- ordered by plain columns: DuckDB before 2.0 cannot ORDER BY a list element of a UNION
ORDER BY first_file, first_line
LIMIT 5
