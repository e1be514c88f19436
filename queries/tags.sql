-- Every tag seen in a clip, with its category and number of clips: actions first, then by category, most frequent first.
SELECT tag, category, n_clips
FROM tag_counts
WHERE n_clips > 0
ORDER BY category <> 'action', category, n_clips DESC, tag;
