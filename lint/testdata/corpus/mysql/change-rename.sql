-- expect: rename-column
-- source: CHANGE renames users.name: the running release's queries still name it; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Renaming a column: Instant Yes)
-- +ferry up
ALTER TABLE users CHANGE name full_name varchar(20);
