-- expect: rename-table
-- source: the running release's queries still name orders; https://www.sqlite.org/lang_altertable.html#altertabrename
-- +ferry up
ALTER TABLE orders RENAME TO purchases;
