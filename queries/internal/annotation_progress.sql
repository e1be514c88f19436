-- (answered, total) over the pairs of $category co-occurring in >= $min_cooccurrence clips, for $annotator.
SELECT count(a.annotator) AS answered, count(*) AS total
FROM cooccurrence c
LEFT JOIN annotations a ON a.annotator = $annotator AND a.action = c.action AND a.tag = c.tag
WHERE c.category = $category AND c.n_both >= $min_cooccurrence;
