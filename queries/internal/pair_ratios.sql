-- NCA ratio n11/n12 of every co-occurring pair (to compare with human answers).
SELECT action, tag, ratio FROM necessity;
