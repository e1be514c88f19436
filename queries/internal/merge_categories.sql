-- Add new tags (ids continue after the largest one) and upgrade 'unknown' tags that are now known.
UPDATE tags SET category = s.category
FROM (SELECT DISTINCT tag, category FROM staged_categories) s
WHERE tags.tag = s.tag AND tags.category = 'unknown';
INSERT INTO tags
SELECT (SELECT coalesce(max(tag_id), 0) FROM tags) + row_number() OVER (ORDER BY min(line)), tag, any_value(category)
FROM staged_categories
WHERE tag NOT IN (SELECT tag FROM tags)
GROUP BY tag;
