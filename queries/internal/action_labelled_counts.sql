-- Per category: how many of $action's clips carry at least one tag of it (its n_action among
-- labelled clips, views.sql); the browser's per-pair cells in labelled mode.
SELECT category, n_action FROM labelled_counts_in(NULL) WHERE action = $action ORDER BY category;
