-- Each clip's files and whether they can be used (temp table clip_video_status), and the one file per clip
-- that splits and coverage use (temp table usable_videos): no problem, a trimmed clip before a whole video,
-- a probed file before an unprobed one, then by root and path. A probed file is too short when a whole
-- video ends, or a trimmed clip lasts, more than $tolerance seconds short of the clip's times.
CREATE OR REPLACE TEMP TABLE clip_video_status AS
SELECT cv.clip_key, cv.root, cv.path, cv.scheme, cv.whole_video, f.probed_at IS NOT NULL AS probed,
       coalesce(f.problem,
                CASE WHEN f.duration IS NULL THEN NULL
                     WHEN cv.whole_video AND f.duration < c.time_end - $tolerance
                         THEN printf('the video ends at %.2f s, before the clip ends (%.2f s)', f.duration, c.time_end)
                     WHEN NOT cv.whole_video AND f.duration < c.time_end - c.time_start - $tolerance
                         THEN printf('lasts %.2f s, shorter than the clip (%.2f s)', f.duration,
                                     c.time_end - c.time_start)
                END) AS problem
FROM clip_videos cv
JOIN video_files f USING (root, path)
JOIN clips c USING (clip_key);

CREATE OR REPLACE TEMP TABLE usable_videos AS
SELECT clip_key, root, path, scheme, whole_video
FROM clip_video_status
WHERE problem IS NULL
QUALIFY row_number() OVER (PARTITION BY clip_key ORDER BY whole_video, NOT probed, root, path) = 1;

SELECT count(*) AS clips FROM usable_videos;
