-- Candidate pairs for the necessity study: every (action, tag of $category) co-occurring in >= $min_cooccurrence
-- clips, with the pair's NCA ratio n11/n12 counted over $clips ('all' or 'labelled' clips, views.sql),
-- minus the pairs $annotator already answered (NULL = keep all).
SELECT c.action, c.tag, c.category, c.n12 AS n_both, c.n_action, c.n_tag, c.ratio
FROM necessity_of($clips) c
WHERE c.category = $category AND c.n12 >= $min_cooccurrence
  AND NOT EXISTS (
      SELECT 1 FROM annotations a
      WHERE a.annotator = $annotator AND a.action = c.action AND a.tag = c.tag
  )
ORDER BY c.action, c.tag;
