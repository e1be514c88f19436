-- Record the scanned roots $roots with their --name-template $template (NULL: none).
DELETE FROM video_roots WHERE list_contains($roots, root);
INSERT INTO video_roots SELECT unnest($roots), $template, now()::TIMESTAMP;
