-- Rows of an extra evaluation set: clips of subset $subset whose primary action (rarest rule) is one of
-- the split's actions (temp table split_kept_actions); the chosen scene is the first scene of the clip's Tags.
WITH base AS (
    SELECT clip_key, clip_id, youtube_id, time_start, time_end FROM clips WHERE subset = $subset
), tagged AS (
    SELECT ct.clip_key, t.tag, t.category, ct.pos, tc.n_clips
    FROM clip_tag_ids ct JOIN tags t USING (tag_id) JOIN tag_counts tc ON tc.tag = t.tag
    WHERE ct.clip_key IN (SELECT clip_key FROM base) AND t.category IN ('action', 'scene', 'object')
), primary_action AS (
    SELECT clip_key, arg_min(tag, (n_clips, tag)) AS action FROM tagged WHERE category = 'action' GROUP BY clip_key
)
SELECT b.clip_id, b.youtube_id, b.time_start, b.time_end, p.action,
       coalesce(arg_min(s.tag, s.pos) FILTER (WHERE s.category = 'scene'), '') AS scene,
       coalesce(string_agg(s.tag, '|' ORDER BY s.pos) FILTER (WHERE s.category = 'scene'), '') AS scenes,
       coalesce(string_agg(s.tag, '|' ORDER BY s.pos) FILTER (WHERE s.category = 'object'), '') AS objects,
       string_agg(s.tag, '|' ORDER BY s.pos) FILTER (WHERE s.category = 'action') AS actions
FROM base b
JOIN primary_action p USING (clip_key)
LEFT JOIN tagged s USING (clip_key)
WHERE p.action IN (SELECT action FROM split_kept_actions)
GROUP BY b.clip_id, b.youtube_id, b.time_start, b.time_end, p.action
ORDER BY p.action, b.clip_id;
