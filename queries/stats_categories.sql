-- Tags per category: defined in the categories file, present in clips, and clip-tag links.
SELECT category, count(*) AS tags_defined, count(*) FILTER (WHERE n_clips > 0) AS tags_present,
       sum(n_clips)::BIGINT AS clip_tag_links
FROM tag_counts
GROUP BY category
ORDER BY category;
