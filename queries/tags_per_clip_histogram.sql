-- How many clips have 0, 1, 2, ... tags of each category ('all' = every tag together).
SELECT category, n_tags, count(*) AS clips
FROM tags_per_clip
GROUP BY category, n_tags
ORDER BY category = 'all', category, n_tags;
