-- Tags used by the staged clips that the categories file does not define, first occurrence first.
WITH used AS (
    SELECT file_index, line, unnest(string_split(tags_raw, '|')) AS tag FROM staging
)
SELECT u.tag, count(*) AS n_rows, arg_min(u.file_index, (u.file_index, u.line)) AS file_index,
       arg_min(u.line, (u.file_index, u.line)) AS line
FROM used u
ANTI JOIN tags t ON t.tag = u.tag
GROUP BY u.tag
ORDER BY file_index, line;
