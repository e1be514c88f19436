-- For "back": the pair $annotator answered most recently in $category, leaving out the pairs in $exclude
-- (action || chr(31) || tag: those already on the screen), with its current answer and a queue card's counts.
WITH recent AS (
    SELECT action, tag, category, answer, answered_at FROM annotations
    WHERE annotator = $annotator AND category = $category
      AND NOT list_contains($exclude, action || chr(31) || tag)
    ORDER BY answered_at DESC, action, tag
    LIMIT 1
)
SELECT r.action, r.tag, r.category, r.answer, c.n_both, c.n_action, c.n_tag,
       (c.n_action - c.n_both) / c.n_both AS ratio
FROM recent r
LEFT JOIN cooccurrence c ON c.action = r.action AND c.tag = r.tag AND c.category = r.category
