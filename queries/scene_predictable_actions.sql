-- Actions where one scene covers most of the action's clips (the easiest shortcuts), top 50.
SELECT action, arg_max(tag, n_both) AS top_scene, max(n_both) AS n_both, any_value(n_action) AS n_action,
       round(max(n_both) / any_value(n_action), 4) AS scene_coverage
FROM cooccurrence
WHERE category = 'scene'
GROUP BY action
HAVING any_value(n_action) >= 10
ORDER BY scene_coverage DESC, action
LIMIT 50;
