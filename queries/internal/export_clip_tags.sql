-- Every tag of the clips of a split set (the registered frame export_clips: row, clip_id), in the order of
-- each clip's Tags string, with its category and the store's youtube id and times of the clip, which the
-- export compares with the split row's. Clips the store lacks come back with tag NULL (the export refuses
-- them).
SELECT e.row, e.clip_id, t.tag, t.category, ct.pos,
       c.youtube_id AS store_youtube_id, c.time_start AS store_time_start, c.time_end AS store_time_end
FROM export_clips e
LEFT JOIN clips c ON c.clip_id = e.clip_id
LEFT JOIN clip_tag_ids ct ON ct.clip_key = c.clip_key
LEFT JOIN tags t ON t.tag_id = ct.tag_id
ORDER BY e.row, ct.pos;
