-- What `videos scan` lists, one row per case, for the roots $roots (NULL: every root). Needs
-- usable_videos.sql first. kind:
--   unmatched   a video file that is no clip of the store under any scheme
--   two files   a clip matched by several files (path: the one used, the first of usable_videos' order;
--               detail: the others)
--   two clips   a file whose name fits several clips: as a trimmed clip and as the whole video of others
--               (ID_000405_000425.mp4 is 40.5-42.5 s as mmaction and 405-425 s as an untrimmed download), or
--               several clips under trimmed schemes
--   broken      a file that cannot be used (detail: why; clip_id: the first clip it matches, if any)
--   too short   a probed file that ends before its clip's times (one row per clip)
WITH scoped AS (SELECT * FROM video_files WHERE $roots IS NULL OR list_contains($roots, root)),
ranked AS (
    SELECT s.*, c.clip_id,
           row_number() OVER (PARTITION BY s.clip_key
                              ORDER BY s.problem IS NOT NULL, s.whole_video, NOT s.probed, s.root, s.path) AS rank,
           count(*) OVER (PARTITION BY s.clip_key) AS files
    FROM clip_video_status s JOIN clips c USING (clip_key)
)
SELECT 'unmatched' AS kind, f.root, f.path, NULL AS clip_id, NULL AS detail
FROM scoped f
WHERE NOT EXISTS (SELECT 1 FROM clip_videos cv WHERE cv.root = f.root AND cv.path = f.path)
UNION ALL
SELECT 'two files', u.root, u.path, u.clip_id,
       'also: ' || (SELECT string_agg(o.root || '/' || o.path, ', ' ORDER BY o.rank)
                    FROM ranked o WHERE o.clip_key = u.clip_key AND o.rank > 1)
FROM ranked u
WHERE u.rank = 1 AND u.files > 1 AND ($roots IS NULL OR list_contains($roots, u.root))
UNION ALL
SELECT 'two clips', cv.root, cv.path, first(c.clip_id ORDER BY c.clip_id),
       string_agg(c.clip_id || ' (' || cv.scheme || ')', ', ' ORDER BY c.clip_id)
FROM clip_videos cv JOIN clips c USING (clip_key)
WHERE $roots IS NULL OR list_contains($roots, cv.root)
GROUP BY cv.root, cv.path
-- trimmed readings that name several clips, or a trimmed reading beside a whole-video one of other clips
HAVING count(DISTINCT cv.clip_key) FILTER (WHERE NOT cv.whole_video) > 1
    OR (count(DISTINCT cv.clip_key) FILTER (WHERE NOT cv.whole_video) = 1 AND count(DISTINCT cv.clip_key) > 1)
UNION ALL
SELECT 'broken', f.root, f.path,
       (SELECT first(c.clip_id ORDER BY c.clip_id) FROM clip_videos cv JOIN clips c USING (clip_key)
        WHERE cv.root = f.root AND cv.path = f.path),
       f.problem
FROM scoped f
WHERE f.problem IS NOT NULL
UNION ALL
SELECT 'too short', s.root, s.path, c.clip_id, s.problem
FROM clip_video_status s JOIN clips c USING (clip_key) JOIN video_files f USING (root, path)
WHERE f.problem IS NULL AND s.problem IS NOT NULL AND ($roots IS NULL OR list_contains($roots, s.root))
ORDER BY kind, root, path, clip_id;
