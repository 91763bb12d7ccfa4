-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Dropping a primary key: only ALGORITHM=COPY, no concurrent DML); observed on MariaDB 10.11.19 here: Dropping a primary key is not allowed without also adding a new primary key. Try ALGORITHM=COPY
-- +ferry up
ALTER TABLE sessions DROP PRIMARY KEY;
