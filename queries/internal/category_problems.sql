-- Problems in the staged categories file, and conflicts with categories already stored.
CREATE OR REPLACE TEMP TABLE staged_categories AS
WITH numbered AS (
    SELECT c.rowid - (SELECT min(rowid) FROM raw_categories) AS record, c.Tag, c.Category FROM raw_categories c
)
SELECT l.line, n.Tag AS tag, n.Category AS category FROM numbered n JOIN record_lines l USING (record);
SELECT line, problem FROM (
    SELECT line, 'the Tag field is empty' AS problem
    FROM staged_categories WHERE tag IS NULL OR trim(tag) = ''
    UNION ALL
    SELECT line, format('category "{}" is not one of action, attribute, concept, event, object, scene', coalesce(category, ''))
    FROM staged_categories WHERE coalesce(category, '') NOT IN ('action', 'attribute', 'concept', 'event', 'object', 'scene')
    UNION ALL
    SELECT max(line), format('tag "{}" is listed twice with different categories', tag)
    FROM staged_categories GROUP BY tag HAVING count(DISTINCT category) > 1
    UNION ALL
    SELECT s.line, format('tag "{}" is already stored as {} but this file says {}', s.tag, t.category, s.category)
    FROM staged_categories s JOIN tags t ON t.tag = s.tag
    WHERE t.category <> s.category AND t.category <> 'unknown'
)
ORDER BY line
LIMIT 5
