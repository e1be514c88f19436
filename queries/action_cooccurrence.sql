-- Every tag that co-occurs with $action, by category then count, with P(tag|action) and lift.
SELECT tag, category, n_both, n_action, n_tag, round(p_tag_given_action, 4) AS p_tag_given_action, round(lift, 3) AS lift
FROM cooccurrence
WHERE action = $action
ORDER BY category, n_both DESC, tag;
