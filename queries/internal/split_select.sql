-- The selection set (`split --select-fraction`): a seeded share of each action's training clips, held out
-- for model selection. Input: the registered frame split_train_frame (clip_id, action, scene), the training
-- side after --strict. A clip's place in the draw is md5(seed:clip_id), a key that no DuckDB or polars
-- version changes. The first clip of every (action, scene) pair stays in training, so each selected clip's
-- pair is a training pair; an action gives round($fraction × its training clips), or all it can spare.
WITH keyed AS (
    SELECT clip_id, action, scene, md5(concat($seed::VARCHAR, ':', clip_id)) AS draw
    FROM split_train_frame
),
ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY action, scene ORDER BY draw, clip_id) AS rank_in_pair,
           count(*) OVER (PARTITION BY action) AS action_clips
    FROM keyed
),
spare AS (
    SELECT *, row_number() OVER (PARTITION BY action ORDER BY draw, clip_id) AS pick
    FROM ranked
    WHERE rank_in_pair > 1
)
SELECT clip_id FROM spare WHERE pick <= round($fraction::DOUBLE * action_clips)
ORDER BY clip_id;
