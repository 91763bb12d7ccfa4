-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Converting a character set: In Place Yes*, Rebuilds Table Yes, Permits Concurrent DML No); observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported. Reason: Cannot change column type
-- +ferry up
ALTER TABLE users CONVERT TO CHARACTER SET utf8mb3;
