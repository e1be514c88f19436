-- Compare two saved splits $a and $b: clips per side in each, and how many clips changed side.
WITH a AS (SELECT clip_id, side FROM split_members WHERE split = $a),
     b AS (SELECT clip_id, side FROM split_members WHERE split = $b)
SELECT coalesce(a.side, '(absent)') AS side_in_a, coalesce(b.side, '(absent)') AS side_in_b, count(*) AS clips
FROM a FULL OUTER JOIN b USING (clip_id)
GROUP BY ALL
ORDER BY side_in_a, side_in_b;
