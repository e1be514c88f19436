-- Coverage of the store's clips by scanned video files, grouped $by 'subset', 'action' or 'scene' (a clip
-- counts once for each of its tags of that category). Needs usable_videos.sql first.
-- with_file: clips matched to at least one file; usable: to a file without a known problem.
WITH grouped AS (
    SELECT clip_key, subset AS name FROM clips WHERE $by = 'subset'
    UNION ALL
    SELECT ct.clip_key, t.tag FROM clip_tag_ids ct JOIN tags t USING (tag_id) WHERE t.category = $by
),
found AS (SELECT DISTINCT clip_key FROM clip_videos)
SELECT g.name AS "group",
       count(*) AS clips,
       count(f.clip_key) AS with_file,
       count(u.clip_key) AS usable,
       round(count(u.clip_key) / count(*), 4) AS share_usable
FROM grouped g
LEFT JOIN found f USING (clip_key)
LEFT JOIN usable_videos u USING (clip_key)
GROUP BY g.name
ORDER BY clips DESC, "group";
