-- expect: rename-column
-- source: the running release's queries still name users.name and fail once it is renamed (column "name" does not exist); https://www.postgresql.org/docs/current/sql-altertable.html
-- +ferry up
ALTER TABLE users RENAME COLUMN name TO full_name;
