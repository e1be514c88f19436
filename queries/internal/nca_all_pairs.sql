-- NCA cells for every (action, tag of $category) pair that co-occurs, in subset $subset (NULL = all).
SELECT action, tag, n_action, n_tag, n_action - n_both AS n11, n_both AS n12, n_tag - n_both AS n22,
       (n_action - n_both) / n_both AS ratio, (n_action - n_both) / n_action AS share, n_clips
FROM cooccurrence_in($subset)
WHERE category = $category
ORDER BY action, n_both DESC, tag;
