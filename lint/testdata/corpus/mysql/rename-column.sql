-- expect: rename-column
-- source: the running release's queries still name users.name; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Renaming a column: Instant Yes)
-- +ferry up
ALTER TABLE users RENAME COLUMN name TO full_name;
