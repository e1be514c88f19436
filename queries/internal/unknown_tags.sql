-- Tags used by the staged clips that the categories file does not define.
SELECT s.tag, count(*) AS n_rows, min(s.file_index) AS file_index, arg_min(s.line, s.file_index * 1e12 + s.line) AS line
FROM staged_tags s
ANTI JOIN tags t ON t.tag = s.tag
GROUP BY s.tag
ORDER BY file_index, line
