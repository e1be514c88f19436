-- Step 1 of a split: each clip's primary action, its action tags, scenes and objects (temp table split_clips).
-- $subset: NULL = every clip; $variant 'default' keeps only the train and val subsets.
-- $rule: 'rarest' (action tag with the fewest clips in the whole store, ties by name),
-- 'first' (first action in the Tags string) or 'file' (table primary_override from the user's CSV).
CREATE OR REPLACE TEMP TABLE split_base AS
SELECT clip_key, clip_id, youtube_id, time_start, time_end, subset
FROM clips
WHERE ($subset IS NULL OR subset = $subset)
  AND ($variant <> 'default' OR subset IN ('train', 'val'));

CREATE OR REPLACE TEMP TABLE split_tags AS
SELECT ct.clip_key, t.tag, t.category, ct.pos
FROM clip_tag_ids ct
JOIN tags t USING (tag_id)
WHERE ct.clip_key IN (SELECT clip_key FROM split_base) AND t.category IN ('action', 'scene', 'object');

CREATE OR REPLACE TEMP TABLE split_primary AS
SELECT clip_key, action FROM (
    SELECT s.clip_key, s.tag AS action,
           row_number() OVER (PARTITION BY s.clip_key
                              ORDER BY CASE WHEN $rule = 'first' THEN s.pos ELSE tc.n_clips END, s.tag) AS rank
    FROM split_tags s JOIN tag_counts tc ON tc.tag = s.tag
    WHERE s.category = 'action' AND $rule <> 'file'
)
WHERE rank = 1
UNION ALL
SELECT b.clip_key, o.action
FROM split_base b
JOIN primary_override o ON o.youtube_id = b.youtube_id AND o.time_start = b.time_start AND o.time_end = b.time_end
WHERE $rule = 'file';

CREATE OR REPLACE TEMP TABLE split_clips AS
SELECT b.*, p.action,
       coalesce(list(s.tag ORDER BY s.pos) FILTER (WHERE s.category = 'action'), []) AS action_list,
       coalesce(list(s.tag ORDER BY s.pos) FILTER (WHERE s.category = 'scene'), []) AS scene_list,
       coalesce(list(s.tag ORDER BY s.pos) FILTER (WHERE s.category = 'object'), []) AS object_list
FROM split_base b
LEFT JOIN split_primary p USING (clip_key)
LEFT JOIN split_tags s USING (clip_key)
GROUP BY ALL;

SELECT count(*) AS clips,
       count(*) FILTER (WHERE action IS NULL) AS no_action,
       count(*) FILTER (WHERE action IS NOT NULL AND len(scene_list) = 0) AS no_scene
FROM split_clips;
