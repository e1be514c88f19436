-- Step 3: the split's rows, in a stable order (the CSVs must be byte-identical for the same inputs).
SELECT clip_id, youtube_id, time_start, time_end, action, scene, scenes, objects, actions, side
FROM split_result
ORDER BY side, action, clip_id;
