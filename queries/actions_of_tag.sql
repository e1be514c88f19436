-- Reverse view: the actions seen with the scene/object/... $tag, most frequent first.
SELECT action, n_both, n_action, n_tag, round(n_both / n_tag, 4) AS p_action_given_tag, round(lift, 3) AS lift
FROM cooccurrence
WHERE tag = $tag
ORDER BY n_both DESC, action;
