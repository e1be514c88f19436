-- The splits saved in the store, with their variant, folder and clip counts per side.
SELECT s.split, s.variant, s.out_dir, s.created_at,
       count(*) FILTER (WHERE m.side = 'train') AS train_clips,
       count(*) FILTER (WHERE m.side = 'select') AS select_clips,
       count(*) FILTER (WHERE m.side = 'val') AS val_clips
FROM splits s LEFT JOIN split_members m USING (split)
GROUP BY ALL
ORDER BY s.created_at;
