-- The 20 scenes seen most often with $action.
SELECT tag AS scene, n_both, n_action, round(p_tag_given_action, 4) AS p_scene_given_action, round(lift, 3) AS lift
FROM cooccurrence
WHERE action = $action AND category = 'scene'
ORDER BY n_both DESC, scene
LIMIT 20;
