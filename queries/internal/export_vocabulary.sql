-- The tags of each HVU category that the store knows (from the categories file), for the exports' label
-- lists; the exports sort them by code point themselves, as mmaction2's parse_tag_list.py does.
SELECT category, tag FROM tags WHERE category IN ('action', 'attribute', 'concept', 'event', 'object', 'scene');
