-- Imported answers whose action or tag does not fit this store, first ones first (temp table imported_check).
SELECT i._file AS file, i._line AS line,
       CASE WHEN a.category IS DISTINCT FROM 'action' THEN format('''{}'' is not an action in this store', i.action)
            ELSE format('''{}'' is not a {} tag in this store', i.tag, i.category) END AS problem
FROM imported_check i
LEFT JOIN tags a ON a.tag = i.action
LEFT JOIN tags t ON t.tag = i.tag
WHERE a.category IS DISTINCT FROM 'action' OR t.category IS DISTINCT FROM i.category
ORDER BY i._order, i._line
LIMIT 5
