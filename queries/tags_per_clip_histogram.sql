-- How many clips have 1, 2, 3, ... tags (all categories together).
SELECT n_tags, count(*) AS clips
FROM (SELECT clip_key, count(*) AS n_tags FROM clip_tag_ids GROUP BY clip_key)
GROUP BY n_tags
ORDER BY n_tags;
