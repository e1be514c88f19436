-- The store's views and table macros (see README "Schema"): code, not data.
-- A read-write open (re)creates them in the store; a read-only open creates them as TEMP objects
-- of its own connection, which shadow any older definitions a store made by an earlier hvuaudit holds.
CREATE OR REPLACE VIEW clip_tags AS
SELECT c.clip_id, t.tag, t.category, ct.pos, c.subset
FROM clip_tag_ids ct
JOIN clips c USING (clip_key)
JOIN tags t USING (tag_id);

-- How many tags of each category every clip has, one row per (clip, category); 'all' counts
-- every tag, and a category the clip lacks counts 0. Feeds the tags-per-clip statistics.
CREATE OR REPLACE VIEW tags_per_clip AS
UNPIVOT (
    SELECT ct.clip_key,
           count(*) AS "all",
           count(*) FILTER (WHERE t.category = 'action') AS action,
           count(*) FILTER (WHERE t.category = 'attribute') AS attribute,
           count(*) FILTER (WHERE t.category = 'concept') AS concept,
           count(*) FILTER (WHERE t.category = 'event') AS event,
           count(*) FILTER (WHERE t.category = 'object') AS object,
           count(*) FILTER (WHERE t.category = 'scene') AS scene
    FROM clip_tag_ids ct JOIN tags t USING (tag_id)
    GROUP BY ct.clip_key
) ON "all", action, attribute, concept, event, object, scene INTO NAME category VALUE n_tags;

-- tag_counts_in(NULL) = all subsets; tag_counts_in('val') = one subset. Tags absent there count 0.
CREATE OR REPLACE MACRO tag_counts_in(subset_name) AS TABLE
SELECT t.tag, t.category, coalesce(sum(s.n_clips), 0)::BIGINT AS n_clips
FROM tags t
LEFT JOIN tag_subset_counts s ON s.tag_id = t.tag_id AND (subset_name IS NULL OR s.subset = subset_name)
GROUP BY t.tag, t.category;

CREATE OR REPLACE VIEW tag_counts AS SELECT * FROM tag_counts_in(NULL);

-- cooccurrence_in(NULL) = all subsets; cooccurrence_in('val') = one subset.
CREATE OR REPLACE MACRO cooccurrence_in(subset_name) AS TABLE
WITH pc AS (
    SELECT action_id, tag_id, sum(n_both)::BIGINT AS n_both
    FROM pair_counts
    WHERE subset_name IS NULL OR subset = subset_name
    GROUP BY action_id, tag_id
), tc AS (
    SELECT tag_id, sum(n_clips)::BIGINT AS n_clips
    FROM tag_subset_counts
    WHERE subset_name IS NULL OR subset = subset_name
    GROUP BY tag_id
), total AS (
    SELECT count(*)::BIGINT AS n_clips FROM clips WHERE subset_name IS NULL OR subset = subset_name
)
SELECT a.tag AS action, t.tag, t.category, pc.n_both,
       ta.n_clips AS n_action, tt.n_clips AS n_tag, total.n_clips,
       pc.n_both / ta.n_clips AS p_tag_given_action,
       (pc.n_both * total.n_clips) / (ta.n_clips * tt.n_clips) AS lift
FROM pc
JOIN tags a ON a.tag_id = pc.action_id
JOIN tags t ON t.tag_id = pc.tag_id
JOIN tc ta ON ta.tag_id = pc.action_id
JOIN tc tt ON tt.tag_id = pc.tag_id
CROSS JOIN total;

CREATE OR REPLACE VIEW cooccurrence AS SELECT * FROM cooccurrence_in(NULL);

-- Necessary Condition Analysis cells for every co-occurring (action, tag) pair, all subsets.
-- n11 = clips with the action but without the tag (violates necessity), n12 = with both,
-- n22 = with the tag but without the action; ratio = n11 / n12 (necessary when <= threshold).
CREATE OR REPLACE VIEW necessity AS
SELECT action, tag, category, n_action, n_tag,
       n_action - n_both AS n11, n_both AS n12, n_tag - n_both AS n22,
       (n_action - n_both) / n_both AS ratio, (n_action - n_both) / n_action AS share
FROM cooccurrence;

-- "Labelled" clips (docs/nca.md): a clip is labelled for a category when it carries at least one
-- tag of it. clip_categories_in(NULL) lists, per clip, the categories it is labelled for.
CREATE OR REPLACE MACRO clip_categories_in(subset_name) AS TABLE
SELECT DISTINCT ct.clip_key, t.category
FROM clip_tag_ids ct
JOIN tags t ON t.tag_id = ct.tag_id
JOIN clips c ON c.clip_key = ct.clip_key
WHERE subset_name IS NULL OR c.subset = subset_name;

-- Per (action, category): how many of the action's clips are labelled for the category.
CREATE OR REPLACE MACRO labelled_counts_in(subset_name) AS TABLE
SELECT a.tag AS action, cc.category, count(*)::BIGINT AS n_action
FROM clip_categories_in(subset_name) cc
JOIN clip_tag_ids ct ON ct.clip_key = cc.clip_key
JOIN tags a ON a.tag_id = ct.tag_id
WHERE a.category = 'action' AND cc.category <> 'action'
GROUP BY a.tag, cc.category;

-- necessity counted among labelled clips (--clips labelled): n_action and n11 count only the
-- action's clips that carry a tag of the pair's category; n12 and n22 do not change, because a
-- clip with the tag is labelled. n11 + n12 = n_action still holds.
CREATE OR REPLACE VIEW necessity_labelled AS
SELECT n.action, n.tag, n.category, l.n_action, n.n_tag,
       l.n_action - n.n12 AS n11, n.n12, n.n22,
       (l.n_action - n.n12) / n.n12 AS ratio, (l.n_action - n.n12) / l.n_action AS share
FROM necessity n
JOIN labelled_counts_in(NULL) l ON l.action = n.action AND l.category = n.category;

-- One NCA pair table for either clip mode: necessity_of('all') or necessity_of('labelled').
CREATE OR REPLACE MACRO necessity_of(clip_mode) AS TABLE
SELECT * FROM necessity WHERE clip_mode = 'all'
UNION ALL
SELECT * FROM necessity_labelled WHERE clip_mode = 'labelled';
