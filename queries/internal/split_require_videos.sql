-- `split --require-videos`: drop from split_clips (step 1's table) the clips with an action but no usable
-- video file (usable_videos.sql runs first). Returns how many were dropped.
CREATE OR REPLACE TEMP TABLE split_no_video AS
SELECT clip_key FROM split_clips
WHERE action IS NOT NULL AND clip_key NOT IN (SELECT clip_key FROM usable_videos);

DELETE FROM split_clips WHERE clip_key IN (SELECT clip_key FROM split_no_video);

SELECT count(*) AS clips FROM split_no_video;
