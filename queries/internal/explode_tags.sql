-- One row per (staged row, tag id), keeping the tag's position in the Tags string.
-- Run after unknown tags were refused or added, so every tag has an id.
CREATE OR REPLACE TEMP TABLE staged_tags AS
SELECT e.row_index, t.tag_id, e.pos
FROM (
    SELECT row_index, unnest(string_split(tags_raw, '|')) AS tag,
           generate_subscripts(string_split(tags_raw, '|'), 1) AS pos
    FROM staging
) e
JOIN tags t USING (tag);
