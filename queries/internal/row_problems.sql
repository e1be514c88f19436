-- Row-level problems in the staged CSV rows, first ones first.
SELECT file_index, line, problem FROM (
    SELECT file_index, line, 'the Tags field is empty' AS problem
    FROM staging WHERE tags_raw IS NULL OR trim(tags_raw) = ''
    UNION ALL
    SELECT file_index, line, 'the Tags field has an empty tag (two "|" in a row, or one at an end)'
    FROM staging WHERE trim(coalesce(tags_raw, '')) <> '' AND list_contains(string_split(tags_raw, '|'), '')
    UNION ALL
    SELECT file_index, line, 'youtube_id is empty'
    FROM staging WHERE youtube_id IS NULL OR trim(youtube_id) = ''
    UNION ALL
    SELECT file_index, line, format('time_start "{}" is not a number', coalesce(time_start_raw, ''))
    FROM staging WHERE time_start IS NULL OR NOT isfinite(time_start)
    UNION ALL
    SELECT file_index, line, format('time_end "{}" is not a number', coalesce(time_end_raw, ''))
    FROM staging WHERE time_end IS NULL OR NOT isfinite(time_end)
    UNION ALL
    SELECT file_index, line, format('time_start {} is negative', time_start_raw)
    FROM staging WHERE time_start < 0
    UNION ALL
    SELECT file_index, line, format('time_end {} is before time_start {}', time_end_raw, time_start_raw)
    FROM staging WHERE time_end < time_start
)
ORDER BY file_index, line
LIMIT 5
