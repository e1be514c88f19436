-- The subsets present among a split's candidate clips.
SELECT DISTINCT subset FROM split_base;
