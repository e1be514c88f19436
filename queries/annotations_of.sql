-- Every current necessity answer, with the pair's NCA ratio (n11/n12) for comparison.
SELECT a.annotator, a.action, a.tag, a.category, a.answer, a.note, a.answered_at, a.source,
       n.n12 AS n_both, round(n.ratio, 4) AS nca_ratio
FROM annotations a
LEFT JOIN necessity n USING (action, tag)
ORDER BY a.annotator, a.category, a.action, a.tag;
