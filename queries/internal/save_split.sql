-- Record a split in the store (replacing an earlier split of the same name); members come from the
-- registered frame split_members_frame (clip_id, side, action, scene).
DELETE FROM split_members WHERE split = $split;
DELETE FROM splits WHERE split = $split;
INSERT INTO split_members SELECT $split, clip_id, side, action, scene FROM split_members_frame;
INSERT INTO splits VALUES ($split, $variant, $out_dir, $manifest::JSON, now()::TIMESTAMP);
