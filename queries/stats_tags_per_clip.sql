-- Distribution of the number of tags per clip, per category (min, quartiles, max, mean).
WITH per_clip AS (
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
), long AS (
    UNPIVOT per_clip ON "all", action, attribute, concept, event, object, scene INTO NAME category VALUE n
)
SELECT category, min(n)::BIGINT AS min, quantile_disc(n, 0.25)::BIGINT AS q25, median(n)::DOUBLE AS median,
       quantile_disc(n, 0.75)::BIGINT AS q75, max(n)::BIGINT AS max, round(avg(n), 2) AS mean
FROM long
GROUP BY category
ORDER BY category = 'all', category;
