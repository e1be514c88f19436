-- Store one answer: append it to the history and make it the annotator's current answer for the pair.
INSERT INTO annotation_events VALUES ($annotator, $action, $tag, $category, $answer, $note, $answered_at, $source);
INSERT INTO annotations VALUES ($annotator, $action, $tag, $category, $answer, $note, $answered_at, $source)
ON CONFLICT (annotator, action, tag) DO UPDATE SET
    category = excluded.category, answer = excluded.answer, note = excluded.note,
    answered_at = excluded.answered_at, source = excluded.source;
