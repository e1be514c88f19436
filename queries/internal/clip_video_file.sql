-- The file of clip $clip_id that the frame strip and `clips sheet` show: the one a split would use
-- (usable_videos.sql runs first, on the same connection).
SELECT u.root, u.path, u.whole_video
FROM usable_videos u JOIN clips c USING (clip_key)
WHERE c.clip_id = $clip_id;
