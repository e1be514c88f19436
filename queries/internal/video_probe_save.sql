-- Record probe results from the registered frame video_probe_frame
-- (root, path, duration, fps, frames, width, height, problem).
UPDATE video_files f
SET probed_at = now()::TIMESTAMP, duration = p.duration, fps = p.fps, frames = p.frames, width = p.width,
    height = p.height, problem = p.problem
FROM video_probe_frame p
WHERE f.root = p.root AND f.path = p.path;
