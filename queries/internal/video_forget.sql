-- `videos forget`: remove every record of the roots $roots (their files stay where they are).
DELETE FROM clip_videos WHERE list_contains($roots, root);
DELETE FROM video_files WHERE list_contains($roots, root);
DELETE FROM video_roots WHERE list_contains($roots, root);
SELECT count(*) AS roots FROM video_roots;
