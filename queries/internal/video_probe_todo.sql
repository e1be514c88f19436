-- The files of the roots $roots (NULL: every root) that `videos scan --probe` still has to open: never
-- probed, and with no problem known from the scan (an empty file needs no opening), by path.
SELECT root, path, size
FROM video_files
WHERE probed_at IS NULL AND problem IS NULL AND ($roots IS NULL OR list_contains($roots, root))
ORDER BY root, path;
