-- Files under $roots per naming scheme (a file read under two schemes counts for both).
SELECT scheme, count(DISTINCT (root, path)) AS files
FROM clip_videos
WHERE list_contains($roots, root)
GROUP BY scheme
ORDER BY scheme;
