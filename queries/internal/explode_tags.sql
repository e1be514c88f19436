-- One row per (staged row, tag), keeping the tag's position in the Tags string.
CREATE OR REPLACE TEMP TABLE staged_tags AS
SELECT file_index, line, unnest(string_split(tags_raw, '|')) AS tag,
       generate_subscripts(string_split(tags_raw, '|'), 1) AS pos
FROM staging
