-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Renaming an index: In Place Yes, Rebuilds No); observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE users RENAME INDEX users_created_idx TO users_created_at_idx;
