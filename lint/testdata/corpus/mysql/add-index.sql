-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Creating or adding a secondary index: In Place Yes, Rebuilds No, DML Yes); observed on MariaDB 10.11.19 here: ALGORITHM=NOCOPY, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE users ADD INDEX users_email_idx (email);
