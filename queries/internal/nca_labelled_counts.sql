-- NCA among labelled clips (views.sql): per action, how many of its clips carry a tag of $category
-- (n_action), and how many clips in subset $subset (NULL = all) carry one (n_clips).
SELECT action, n_action,
       (SELECT count(*) FROM clip_categories_in($subset) WHERE category = $category)::BIGINT AS n_clips
FROM labelled_counts_in($subset)
WHERE category = $category
ORDER BY action;
