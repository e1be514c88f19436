-- Clips with both, for the $top_actions most common actions × the $top_tags most common tags of $category
-- (the audit report's heatmap). p_tag_given_action: the share of the action's clips that carry the tag.
WITH top_actions AS (
    SELECT tag AS action, n_clips AS n_action FROM tag_counts
    WHERE category = 'action' AND n_clips > 0 ORDER BY n_clips DESC, tag LIMIT $top_actions
), top_tags AS (
    SELECT tag, n_clips AS n_tag FROM tag_counts
    WHERE category = $category AND n_clips > 0 ORDER BY n_clips DESC, tag LIMIT $top_tags
)
SELECT a.action, t.tag, coalesce(c.n_both, 0)::BIGINT AS n_both, a.n_action, t.n_tag,
       round(coalesce(c.n_both, 0) / a.n_action, 4) AS p_tag_given_action
FROM top_actions a
CROSS JOIN top_tags t
LEFT JOIN cooccurrence c ON c.action = a.action AND c.tag = t.tag
ORDER BY a.n_action DESC, a.action, t.n_tag DESC, t.tag;
