-- expect: drop-column,sqlite-table-rebuild
-- source: the running release may still read or write users.age; https://www.sqlite.org/lang_altertable.html#altertabdropcol
-- source: DROP COLUMN "rewrites its content to purge the data associated with that column" (https://www.sqlite.org/lang_altertable.html#altertabdropcol): a whole-table rewrite under the write lock
-- +ferry up
ALTER TABLE users DROP COLUMN age;
