-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Dropping an index: In Place Yes, Rebuilds No, DML Yes); observed on MariaDB 10.11.19 here: ALGORITHM=NOCOPY, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE users DROP INDEX users_created_idx;
