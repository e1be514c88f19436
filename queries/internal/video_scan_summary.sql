-- After a scan of $roots: files matched to a clip, and the store's clips with any file and with a usable
-- one (needs usable_videos.sql first).
SELECT (SELECT count(DISTINCT (root, path)) FROM clip_videos WHERE list_contains($roots, root)) AS matched_files,
       (SELECT count(*) FROM clips) AS clips,
       (SELECT count(DISTINCT clip_key) FROM clip_videos) AS clips_with_file,
       (SELECT count(*) FROM usable_videos) AS usable_clips;
