-- Clips per subset, and how many of them have no action or no scene.
SELECT c.subset, count(*) AS clips,
       count(*) FILTER (WHERE NOT has_action) AS clips_without_action,
       count(*) FILTER (WHERE NOT has_scene) AS clips_without_scene,
       round(avg(n_tags), 2) AS mean_tags_per_clip
FROM clips c
JOIN (
    SELECT ct.clip_key, count(*) AS n_tags,
           bool_or(t.category = 'action') AS has_action, bool_or(t.category = 'scene') AS has_scene
    FROM clip_tag_ids ct JOIN tags t USING (tag_id) GROUP BY ct.clip_key
) USING (clip_key)
GROUP BY c.subset
ORDER BY c.subset;
