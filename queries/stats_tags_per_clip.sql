-- Distribution of the number of tags per clip, per category (min, quartiles, max, mean).
SELECT category, min(n_tags)::BIGINT AS min, quantile_disc(n_tags, 0.25)::BIGINT AS q25,
       median(n_tags)::DOUBLE AS median, quantile_disc(n_tags, 0.75)::BIGINT AS q75,
       max(n_tags)::BIGINT AS max, round(avg(n_tags), 2) AS mean
FROM tags_per_clip
GROUP BY category
ORDER BY category = 'all', category;
