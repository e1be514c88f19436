-- Step 1 of `videos scan`: what changed under the scanned roots since the last scan. Input: the registered
-- frame video_scan_frame (root, path, stem, size, mtime) of every video file found now, and $roots.
-- change: new | changed (size or mtime differs: its probe is forgotten) | unchanged | removed.
CREATE OR REPLACE TEMP TABLE video_scan_diff AS
SELECT coalesce(n.root, o.root) AS root, coalesce(n.path, o.path) AS path,
       CASE WHEN o.path IS NULL THEN 'new'
            WHEN n.path IS NULL THEN 'removed'
            WHEN o.size = n.size AND o.mtime = n.mtime THEN 'unchanged'
            ELSE 'changed' END AS change
FROM (SELECT root, path, size, mtime FROM video_files WHERE list_contains($roots, root)) o
FULL OUTER JOIN video_scan_frame n ON n.root = o.root AND n.path = o.path;

SELECT change, count(*) AS files FROM video_scan_diff GROUP BY change;
