-- Every (action, tag) pair of category $category whose NCA ratio n11/n12 is at most $threshold.
SELECT action, tag, n_action, n_tag, n11, n12, n22, round(ratio, 4) AS ratio, round(share, 4) AS share
FROM necessity
WHERE category = $category AND ratio <= CAST($threshold AS DOUBLE)
ORDER BY ratio, n12 DESC, action, tag;
