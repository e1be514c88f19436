-- With --allow-unknown: store tags missing from the categories file under category 'unknown'.
INSERT INTO tags
SELECT (SELECT coalesce(max(tag_id), 0) FROM tags) + row_number() OVER (ORDER BY min(file_index), min(line)), tag, 'unknown'
FROM staged_tags
WHERE tag NOT IN (SELECT tag FROM tags)
GROUP BY tag
