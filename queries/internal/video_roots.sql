-- The folders scanned so far, and the --name-template each was scanned with.
SELECT root, name_template, scanned_at FROM video_roots ORDER BY root;
