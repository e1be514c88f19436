-- The file a split uses for each clip that has a usable one (usable_videos.sql runs first).
SELECT c.clip_id, u.root, u.path, u.whole_video
FROM usable_videos u JOIN clips c USING (clip_key);
