-- The categories of $action and $tag in the store (to validate an answer before it is written).
SELECT (SELECT category FROM tags WHERE tag = $action) AS action_category,
       (SELECT category FROM tags WHERE tag = $tag) AS tag_category;
