-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Adding a STORED column: In Place No, Permits Concurrent DML No); observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported ... Try ALGORITHM=COPY
-- +ferry up
ALTER TABLE users ADD COLUMN email_domain varchar(100) AS (substring_index(email, '@', -1)) STORED;
