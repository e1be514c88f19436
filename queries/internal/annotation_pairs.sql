-- Candidate pairs for the necessity study: every (action, tag of $category) co-occurring in >= $min_cooccurrence
-- clips, with the pair's NCA ratio n11/n12, minus the pairs $annotator already answered (NULL = keep all).
SELECT c.action, c.tag, c.category, c.n_both, c.n_action, c.n_tag,
       (c.n_action - c.n_both) / c.n_both AS ratio
FROM cooccurrence c
WHERE c.category = $category AND c.n_both >= $min_cooccurrence
  AND NOT EXISTS (
      SELECT 1 FROM annotations a
      WHERE a.annotator = $annotator AND a.action = c.action AND a.tag = c.tag
  )
ORDER BY c.action, c.tag;
