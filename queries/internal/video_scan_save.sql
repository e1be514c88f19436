-- Step 2 of `videos scan`: apply video_scan_diff to video_files (unchanged files keep their probe), then
-- match every file under the roots to the store's clips, under each naming scheme (docs/videos.md):
--   mmaction              ID_SSSSSS_EEEEEE.mp4, tenths of seconds truncated (mmaction2's download.py)
--   downloader            ID_SSSSSS_EEEEEE_.mp4, seconds truncated, the trimmed clip (HVU-Downloader)
--   downloader-untrimmed  ID_SSSSSS_EEEEEE.mp4, the same name before trimming: the whole video
--   seconds               ID_40.5_42.5.mp4, the times as decimals (the form-delivered set)
--   youtube-id            ID.mp4, the whole video
--   template              the name --name-template gives (registered frame video_template_names: clip_key,
--                         name, whole_video: the template names no time or clip field, so one file a video)
-- A six-digit pair without '_' is read both as mmaction and as downloader-untrimmed; only a clip with
-- those times matches, and a file that matches two clips is listed by `videos scan` as ambiguous.
DELETE FROM video_files f
WHERE list_contains($roots, f.root)
  AND EXISTS (SELECT 1 FROM video_scan_diff d
              WHERE d.root = f.root AND d.path = f.path AND d.change IN ('changed', 'removed'));

INSERT INTO video_files
SELECT n.root, n.path, n.size, n.mtime, now()::TIMESTAMP, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN n.size = 0 THEN 'empty file (0 bytes)' END
FROM video_scan_frame n
JOIN video_scan_diff d ON d.root = n.root AND d.path = n.path AND d.change IN ('new', 'changed');

DELETE FROM clip_videos WHERE list_contains($roots, root);

INSERT INTO clip_videos
WITH parsed AS (
    SELECT root, path, stem,
           regexp_extract(stem, '^(.+)_([0-9]+(?:\.[0-9]+)?)_([0-9]+(?:\.[0-9]+)?)(_?)$',
                          ['id', 'a', 'b', 'tail']) AS p
    FROM video_scan_frame
),
timed AS (
    SELECT root, path, p.id AS youtube_id, p.a AS a, p.b AS b, p.tail = '_' AS trimmed_mark,
           (length(p.a) = 6 AND length(p.b) = 6 AND NOT contains(p.a, '.') AND NOT contains(p.b, '.')) AS padded
    FROM parsed
    WHERE p.id <> ''
),
matches AS (
    SELECT c.clip_key, t.root, t.path, 'mmaction' AS scheme, false AS whole_video
    FROM timed t JOIN clips c ON c.youtube_id = t.youtube_id
    WHERE t.padded AND NOT t.trimmed_mark
      AND trunc(c.time_start * 10) = t.a::BIGINT AND trunc(c.time_end * 10) = t.b::BIGINT
    UNION ALL
    SELECT c.clip_key, t.root, t.path, 'downloader', false
    FROM timed t JOIN clips c ON c.youtube_id = t.youtube_id
    WHERE t.padded AND t.trimmed_mark
      AND trunc(c.time_start) = t.a::BIGINT AND trunc(c.time_end) = t.b::BIGINT
    UNION ALL
    SELECT c.clip_key, t.root, t.path, 'downloader-untrimmed', true
    FROM timed t JOIN clips c ON c.youtube_id = t.youtube_id
    WHERE t.padded AND NOT t.trimmed_mark
      AND trunc(c.time_start) = t.a::BIGINT AND trunc(c.time_end) = t.b::BIGINT
    UNION ALL
    SELECT c.clip_key, t.root, t.path, 'seconds', false
    FROM timed t JOIN clips c ON c.youtube_id = t.youtube_id
    WHERE NOT t.padded AND NOT t.trimmed_mark
      AND c.time_start = t.a::DOUBLE AND c.time_end = t.b::DOUBLE
    UNION ALL
    SELECT c.clip_key, f.root, f.path, 'youtube-id', true
    FROM video_scan_frame f JOIN clips c ON c.youtube_id = f.stem
    UNION ALL
    SELECT n.clip_key, f.root, f.path, 'template', n.whole_video
    FROM video_scan_frame f JOIN video_template_names n ON n.name = f.path
)
SELECT DISTINCT clip_key, root, path, scheme, whole_video FROM matches;
