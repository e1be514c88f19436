-- NCA for one category: per action, the tag of $category it co-occurs with most, and its cells.
-- Ties on n_both go to the tag with fewer clips without the action (smaller n22), then by name.
-- Actions that never meet the category keep tag = NULL (n12 = 0, ratio = NULL).
WITH ranked AS (
    SELECT action, tag, n_both, n_tag,
           row_number() OVER (PARTITION BY action ORDER BY n_both DESC, n_tag - n_both, tag) AS rank
    FROM cooccurrence_in($subset)
    WHERE category = $category
), actions AS (
    SELECT tag AS action, n_clips AS n_action FROM tag_counts_in($subset) WHERE category = 'action' AND n_clips > 0
)
SELECT a.action, r.tag, a.n_action, r.n_tag,
       a.n_action - coalesce(r.n_both, 0) AS n11,
       coalesce(r.n_both, 0) AS n12,
       r.n_tag - r.n_both AS n22,
       (a.n_action - r.n_both) / r.n_both AS ratio,
       (a.n_action - coalesce(r.n_both, 0)) / a.n_action AS share,
       (SELECT count(*) FROM clips WHERE $subset IS NULL OR subset = $subset) AS n_clips
FROM actions a
LEFT JOIN ranked r ON r.action = a.action AND r.rank = 1
ORDER BY a.action;
