-- Current answers of $annotator (NULL = everyone), in exchange-file order.
SELECT * FROM annotations WHERE $annotator IS NULL OR annotator = $annotator ORDER BY annotator, action, tag;
