-- Step 2: filter, choose one scene per clip, and assign (action, scene) pairs to train / val.
-- SI-1 (si1): chosen scene = the clip's scene most frequent within its action (ties: most popular
-- overall, then name); the rarest pairs go to val while val stays <= $val_fraction of the action.
-- SI-2 (si2): chosen scene = the least frequent within the action (ties: least popular, then name);
-- the most common pairs go to train until train holds >= 1 - $val_fraction; one pair always stays in val;
-- with $max_train_scenes K (not NULL), at most the K most common pairs go to train ($val_fraction 0: no share limit).
-- default: sides are the store's train / val subsets; chosen scene by the SI-1 rule; scene-less clips kept.
CREATE OR REPLACE TEMP TABLE split_eligible AS
SELECT * FROM split_clips
WHERE action IS NOT NULL AND ($variant = 'default' OR len(scene_list) > 0);

CREATE OR REPLACE TEMP TABLE split_action_sizes AS
SELECT action, count(*) AS n_action,
       count(*) FILTER (WHERE subset = 'train') AS n_train_subset,
       count(*) FILTER (WHERE subset = 'val') AS n_val_subset
FROM split_eligible GROUP BY action;

CREATE OR REPLACE TEMP TABLE split_kept AS
SELECT e.* FROM split_eligible e JOIN split_action_sizes a USING (action)
WHERE a.n_action >= $min_videos
  AND ($variant <> 'default' OR (a.n_train_subset > 0 AND a.n_val_subset > 0));

CREATE OR REPLACE TEMP TABLE split_clip_scenes AS
SELECT clip_key, action, unnest(scene_list) AS scene FROM split_kept;

CREATE OR REPLACE TEMP TABLE split_scene_popularity AS
SELECT scene, count(*) AS n_global FROM split_clip_scenes GROUP BY scene;

CREATE OR REPLACE TEMP TABLE split_scene_in_action AS
SELECT action, scene, count(*) AS n_within FROM split_clip_scenes GROUP BY action, scene;

CREATE OR REPLACE TEMP TABLE split_chosen AS
SELECT clip_key, scene, n_within, n_global FROM (
    SELECT cs.clip_key, cs.scene, w.n_within, p.n_global,
           row_number() OVER (
               PARTITION BY cs.clip_key
               ORDER BY CASE WHEN $variant = 'si2' THEN w.n_within ELSE -w.n_within END,
                        CASE WHEN $variant = 'si2' THEN p.n_global ELSE -p.n_global END,
                        cs.scene) AS rank
    FROM split_clip_scenes cs
    JOIN split_scene_in_action w USING (action, scene)
    JOIN split_scene_popularity p USING (scene)
)
WHERE rank = 1;

CREATE OR REPLACE TEMP TABLE split_pairs AS
SELECT k.action, coalesce(c.scene, '') AS scene, count(*) AS size, coalesce(any_value(c.n_global), 0) AS n_global
FROM split_kept k LEFT JOIN split_chosen c USING (clip_key)
GROUP BY k.action, coalesce(c.scene, '');

CREATE OR REPLACE TEMP TABLE split_pair_sides AS
WITH ordered AS (
    SELECT p.*, a.n_action,
           count(*) OVER (PARTITION BY p.action) AS n_pairs,
           row_number() OVER (PARTITION BY p.action ORDER BY p.size, p.n_global, p.scene) AS rank_up,
           sum(p.size) OVER (PARTITION BY p.action ORDER BY p.size, p.n_global, p.scene
                             ROWS UNBOUNDED PRECEDING) AS cum_up,
           row_number() OVER (PARTITION BY p.action ORDER BY p.size DESC, p.n_global DESC, p.scene) AS rank_down,
           sum(p.size) OVER (PARTITION BY p.action ORDER BY p.size DESC, p.n_global DESC, p.scene
                             ROWS UNBOUNDED PRECEDING) - p.size AS cum_down_before
    FROM split_pairs p
    JOIN (SELECT action, count(*) AS n_action FROM split_kept GROUP BY action) a USING (action)
)
SELECT action, scene, size, n_pairs,
       CASE
           WHEN $variant = 'default' THEN NULL
           WHEN n_pairs < 2 THEN 'unsplittable'
           WHEN $variant = 'si1' THEN
               CASE WHEN rank_up = 1 OR cum_up <= $val_fraction * n_action THEN 'val' ELSE 'train' END
           ELSE
               CASE WHEN rank_down < n_pairs AND cum_down_before < (1 - $val_fraction) * n_action
                         AND ($max_train_scenes IS NULL OR rank_down <= $max_train_scenes)
                    THEN 'train' ELSE 'val' END
       END AS side
FROM ordered;

CREATE OR REPLACE TEMP TABLE split_result AS
SELECT k.clip_id, k.youtube_id, k.time_start, k.time_end, k.action, coalesce(c.scene, '') AS scene,
       coalesce(array_to_string(k.scene_list, '|'), '') AS scenes, coalesce(array_to_string(k.object_list, '|'), '') AS objects,
       array_to_string(k.action_list, '|') AS actions,
       coalesce(ps.side, k.subset) AS side
FROM split_kept k
LEFT JOIN split_chosen c USING (clip_key)
JOIN split_pair_sides ps ON ps.action = k.action AND ps.scene = coalesce(c.scene, '')
WHERE coalesce(ps.side, '') <> 'unsplittable';

SELECT
    (SELECT count(*) FROM split_clips WHERE action IS NOT NULL AND $variant <> 'default' AND len(scene_list) = 0) AS no_scene,
    (SELECT count(*) FROM split_eligible) - (SELECT count(*) FROM split_kept) AS below_min_videos_or_one_side,
    (SELECT count(DISTINCT action) FROM split_eligible) - (SELECT count(DISTINCT action) FROM split_kept) AS actions_below_min_videos,
    (SELECT coalesce(sum(size), 0)::BIGINT FROM split_pair_sides WHERE side = 'unsplittable') AS single_pair_clips,
    (SELECT count(*) FROM split_pair_sides WHERE side = 'unsplittable') AS single_pair_actions,
    (SELECT coalesce(max(n_action), 0) FROM split_action_sizes) AS largest_action;
