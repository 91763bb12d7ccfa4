-- expect: rename-column
-- source: the running release's queries still name users.name; https://www.sqlite.org/lang_altertable.html#altertabrename
-- +ferry up
ALTER TABLE users RENAME COLUMN name TO full_name;
