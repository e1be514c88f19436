-- NCA among labelled clips: the clips that carry at least one tag of $category (in subset $subset,
-- NULL = all). Per action, how many of its clips are labelled so (n_action), and how many clips
-- are labelled in all (n_clips). A clip without any $category tag says nothing about $category.
WITH labelled AS (
    SELECT DISTINCT ct.clip_key
    FROM clip_tag_ids ct
    JOIN tags t ON t.tag_id = ct.tag_id
    JOIN clips c ON c.clip_key = ct.clip_key
    WHERE t.category = $category AND ($subset IS NULL OR c.subset = $subset)
)
SELECT a.tag AS action,
       count(DISTINCT l.clip_key)::BIGINT AS n_action,
       (SELECT count(*) FROM labelled)::BIGINT AS n_clips
FROM labelled l
JOIN clip_tag_ids ct ON ct.clip_key = l.clip_key
JOIN tags a ON a.tag_id = ct.tag_id
WHERE a.category = 'action'
GROUP BY a.tag
ORDER BY a.tag;
