-- Every action with its number of clips, most frequent first.
SELECT tag AS action, n_clips FROM tag_counts WHERE category = 'action' AND n_clips > 0 ORDER BY n_clips DESC, action;
