-- Row-level problems in the staged CSV rows, first ones first (within a line, the most basic problem first).
-- A time is a plain decimal number of seconds: 1 to 9 digits, optionally a point and 1 to 6 digits ("12", "40.5"),
-- so that every accepted time is exact as a DOUBLE and prints back as written.
-- A minus sign is refused as negative; other signs, exponents ("1e3"), digit separators ("1_000"), spaces, "nan" and "inf" are refused.
SELECT file_index, line, problem FROM (
    SELECT file_index, line, 1 AS rank, 'the Tags field is empty' AS problem
    FROM staging WHERE tags_raw IS NULL OR trim(tags_raw) = ''
    UNION ALL
    SELECT file_index, line, 2, 'the Tags field has an empty tag (two "|" in a row, or one at an end)'
    FROM staging WHERE trim(coalesce(tags_raw, '')) <> '' AND list_contains(string_split(tags_raw, '|'), '')
    UNION ALL
    SELECT file_index, line, 3, 'youtube_id is empty'
    FROM staging WHERE youtube_id IS NULL OR trim(youtube_id) = ''
    UNION ALL
    SELECT file_index, line, 4, format('time_start {} is negative', time_start_raw)
    FROM staging WHERE regexp_full_match(coalesce(time_start_raw, ''), '-[0-9]{1,9}(\.[0-9]{1,6})?')
    UNION ALL
    SELECT file_index, line, 5, format('time_end {} is negative', time_end_raw)
    FROM staging WHERE regexp_full_match(coalesce(time_end_raw, ''), '-[0-9]{1,9}(\.[0-9]{1,6})?')
    UNION ALL
    SELECT file_index, line, 4, format('time_start "{}" is not a number (a time is plain decimal seconds, like 12 or 40.5)',
                                       coalesce(time_start_raw, ''))
    FROM staging WHERE NOT regexp_full_match(coalesce(time_start_raw, ''), '-?[0-9]{1,9}(\.[0-9]{1,6})?')
    UNION ALL
    SELECT file_index, line, 5, format('time_end "{}" is not a number (a time is plain decimal seconds, like 12 or 40.5)',
                                       coalesce(time_end_raw, ''))
    FROM staging WHERE NOT regexp_full_match(coalesce(time_end_raw, ''), '-?[0-9]{1,9}(\.[0-9]{1,6})?')
    UNION ALL
    SELECT file_index, line, 6, format('time_end {} is before time_start {}', time_end_raw, time_start_raw)
    FROM staging
    WHERE regexp_full_match(coalesce(time_start_raw, ''), '[0-9]{1,9}(\.[0-9]{1,6})?')
      AND regexp_full_match(coalesce(time_end_raw, ''), '[0-9]{1,9}(\.[0-9]{1,6})?')
      AND time_end < time_start
)
ORDER BY file_index, line, rank
LIMIT 5
