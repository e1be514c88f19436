-- With --allow-unknown: store tags missing from the categories file under category 'unknown'.
WITH used AS (
    SELECT file_index, line, unnest(string_split(tags_raw, '|')) AS tag FROM staging
), missing AS (
    SELECT u.tag, min((u.file_index, u.line)) AS first_seen
    FROM used u ANTI JOIN tags t ON t.tag = u.tag
    GROUP BY u.tag
)
INSERT INTO tags
SELECT (SELECT coalesce(max(tag_id), 0) FROM tags) + row_number() OVER (ORDER BY first_seen, tag), tag, 'unknown'
FROM missing;
