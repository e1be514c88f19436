-- Move the validated staging rows into clips, clip_tag_ids and sources.
-- A clip's key is the largest existing key plus its row_index, so no join is needed for its tags.
CREATE OR REPLACE TEMP TABLE key_base AS SELECT coalesce(max(clip_key), 0) AS base FROM clips;
INSERT INTO clips
SELECT (SELECT base FROM key_base) + s.row_index,
       s.youtube_id || '_' || s.time_start::VARCHAR || '_' || s.time_end::VARCHAR,
       s.youtube_id, s.time_start, s.time_end, s.subset, n.source_id
FROM staging s JOIN new_sources n USING (file_index)
ORDER BY s.row_index;
-- A tag repeated within one clip counts once (its first position is kept).
INSERT INTO clip_tag_ids
SELECT (SELECT base FROM key_base) + row_index, tag_id, min(pos)::SMALLINT
FROM staged_tags
GROUP BY row_index, tag_id;
INSERT INTO sources SELECT source_id, path, sha256, rows, subset, now()::TIMESTAMP FROM new_sources;
-- Free the staging copies before the co-occurrence count (keeps peak memory down at 500k clips).
CREATE OR REPLACE TEMP TABLE touched_subsets AS SELECT DISTINCT subset FROM staging;
DROP TABLE staged_tags;
DROP TABLE staging;
