-- The clips that carry both $action and $tag (the first 200 in store order), with all their tags and a YouTube link at the right second.
WITH pair_clips AS (
    SELECT a.clip_key
    FROM tag_clip_ids a  -- in tag order: only the two tags' stretches of it are read
    JOIN tag_clip_ids b USING (clip_key)
    WHERE a.tag_id = (SELECT tag_id FROM tags WHERE tag = $action)
      AND b.tag_id = (SELECT tag_id FROM tags WHERE tag = $tag)
    -- the lowest keys, not the lowest clip ids: the 200 clips then sit together in clip_tag_ids
    -- and the scan below skips most of it
    ORDER BY a.clip_key
    LIMIT 200
)
SELECT c.clip_id, c.youtube_id, c.time_start, c.time_end, c.subset,
       string_agg(t.tag, '|' ORDER BY ct.pos) AS tags,
       'https://www.youtube.com/watch?v=' || c.youtube_id || '&t=' || floor(c.time_start)::BIGINT || 's' AS url
FROM pair_clips p
JOIN clips c USING (clip_key)
JOIN clip_tag_ids ct USING (clip_key)
JOIN tags t USING (tag_id)
GROUP BY ALL
ORDER BY c.clip_id;
