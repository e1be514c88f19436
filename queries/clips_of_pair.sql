-- The clips that carry both $action and $tag (at most 200), with all their tags and a YouTube link at the right second.
WITH pair_clips AS (
    SELECT a.clip_key
    FROM clip_tag_ids a
    JOIN clip_tag_ids b USING (clip_key)
    WHERE a.tag_id = (SELECT tag_id FROM tags WHERE tag = $action)
      AND b.tag_id = (SELECT tag_id FROM tags WHERE tag = $tag)
), first_clips AS (
    SELECT c.* FROM clips c WHERE c.clip_key IN (SELECT clip_key FROM pair_clips) ORDER BY c.clip_id LIMIT 200
)
SELECT c.clip_id, c.youtube_id, c.time_start, c.time_end, c.subset,
       string_agg(t.tag, '|' ORDER BY ct.pos) AS tags,
       'https://www.youtube.com/watch?v=' || c.youtube_id || '&t=' || floor(c.time_start)::BIGINT || 's' AS url
FROM first_clips c
JOIN clip_tag_ids ct USING (clip_key)
JOIN tags t USING (tag_id)
GROUP BY ALL
ORDER BY c.clip_id;
