-- Move the validated staging rows into clips, clip_tag_ids and sources.
CREATE OR REPLACE TEMP TABLE new_clips AS
SELECT (SELECT coalesce(max(clip_key), 0) FROM clips) + row_number() OVER (ORDER BY file_index, line) AS clip_key,
       file_index, line,
       youtube_id || '_' || time_start::VARCHAR || '_' || time_end::VARCHAR AS clip_id,
       youtube_id, time_start, time_end, subset
FROM staging;
INSERT INTO clips
SELECT n.clip_key, n.clip_id, n.youtube_id, n.time_start, n.time_end, n.subset, s.source_id
FROM new_clips n JOIN new_sources s USING (file_index)
ORDER BY n.clip_key;
INSERT INTO clip_tag_ids
SELECT n.clip_key, st.tag_id, min(st.pos)::SMALLINT
FROM staged_tags st
JOIN new_clips n USING (file_index, line)
GROUP BY n.clip_key, st.tag_id
ORDER BY n.clip_key, min(st.pos);
INSERT INTO sources SELECT source_id, path, sha256, rows, subset, now()::TIMESTAMP FROM new_sources;
-- Free the staging copies before the co-occurrence count (keeps peak memory down at 500k clips).
CREATE OR REPLACE TEMP TABLE touched_subsets AS SELECT DISTINCT subset FROM staging;
DROP TABLE new_clips;
DROP TABLE staged_tags;
DROP TABLE staging;
