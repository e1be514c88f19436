-- Tags used in clips that the categories file does not define (ingested with --allow-unknown).
SELECT tag, n_clips FROM tag_counts WHERE category = 'unknown' ORDER BY n_clips DESC, tag;
