-- Clips that carry no scene tag, per subset, with their actions.
SELECT c.subset, c.clip_id, c.youtube_id, c.time_start, c.time_end,
       string_agg(t.tag, '|' ORDER BY ct.pos) FILTER (WHERE t.category = 'action') AS actions
FROM clips c
JOIN clip_tag_ids ct USING (clip_key)
JOIN tags t USING (tag_id)
GROUP BY ALL
HAVING count(*) FILTER (WHERE t.category = 'scene') = 0
ORDER BY c.subset, c.clip_id;
