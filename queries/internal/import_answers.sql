-- Merge the staged import rows (temp table imported) into annotations / annotation_events.
-- Returns one row per staged answer with what happened to it: added, unchanged, updated (newer), kept (older).
CREATE OR REPLACE TEMP TABLE imported AS SELECT * FROM imported_frame;

CREATE OR REPLACE TEMP TABLE import_outcome AS
SELECT i.*, a.answer AS current_answer, a.answered_at AS current_answered_at,
       CASE
           WHEN a.annotator IS NULL THEN 'added'
           WHEN a.answer = i.answer AND coalesce(a.note, '') = coalesce(i.note, '') THEN 'unchanged'
           WHEN i.answered_at > a.answered_at THEN 'updated'
           ELSE 'kept'
       END AS outcome
FROM imported i
LEFT JOIN annotations a USING (annotator, action, tag);

INSERT INTO annotation_events
SELECT i.annotator, i.action, i.tag, i.category, i.answer, i.note, i.answered_at, i.source
FROM imported i
WHERE NOT EXISTS (
    SELECT 1 FROM annotation_events e
    WHERE e.annotator = i.annotator AND e.action = i.action AND e.tag = i.tag
      AND e.answer = i.answer AND e.answered_at = i.answered_at
);

INSERT INTO annotations
SELECT annotator, action, tag, category, answer, note, answered_at, source
FROM import_outcome WHERE outcome IN ('added', 'updated')
ON CONFLICT (annotator, action, tag) DO UPDATE SET
    category = excluded.category, answer = excluded.answer, note = excluded.note,
    answered_at = excluded.answered_at, source = excluded.source;

SELECT annotator, action, tag, answer, answered_at, current_answer, current_answered_at, outcome
FROM import_outcome ORDER BY annotator, action, tag;
