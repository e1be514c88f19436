-- Every clip with the fields a --name-template may use (hvucontracts.splitfolder.template_fields): one
-- row per action tag of the clip when $per_action (a template with {action}: a folder per class), else
-- one row per clip with action ''.
SELECT c.clip_key, c.clip_id, c.youtube_id, c.time_start, c.time_end, t.tag AS action
FROM clips c JOIN clip_tag_ids ct USING (clip_key) JOIN tags t USING (tag_id)
WHERE $per_action AND t.category = 'action'
UNION ALL
SELECT clip_key, clip_id, youtube_id, time_start, time_end, '' AS action
FROM clips
WHERE NOT $per_action
ORDER BY clip_key, action;
