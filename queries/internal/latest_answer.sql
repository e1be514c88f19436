-- The most recent answer $annotator gave (for "back").
SELECT action, tag, category, answer FROM annotation_events
WHERE annotator = $annotator ORDER BY answered_at DESC LIMIT 1;
