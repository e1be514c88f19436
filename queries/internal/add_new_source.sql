INSERT INTO new_sources
SELECT $file_index, (SELECT coalesce(max(source_id), 0) FROM sources) + $file_index + 1,
       $path, $sha256, (SELECT count(*) FROM staging WHERE file_index = $file_index), $subset
