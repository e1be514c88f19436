-- Clips of the user's primary-action file (registered as primary_override) that are not in the store.
SELECT o.youtube_id, o.time_start, o.time_end
FROM primary_override o
ANTI JOIN clips c ON c.youtube_id = o.youtube_id AND c.time_start = o.time_start AND c.time_end = o.time_end;
