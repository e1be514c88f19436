-- Record a staged file as a new source (committed with the clips); returns its row count.
INSERT INTO new_sources
SELECT $file_index, (SELECT coalesce(max(source_id), 0) FROM sources) + $file_index + 1,
       $path, $sha256, (SELECT count(*) FROM staging WHERE file_index = $file_index), $subset;
SELECT rows FROM new_sources WHERE file_index = $file_index;
