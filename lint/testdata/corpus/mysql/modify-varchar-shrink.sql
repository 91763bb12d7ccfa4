-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (decreasing VARCHAR size requires ALGORITHM=COPY); observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported. Reason: Cannot change column type
-- +ferry up
ALTER TABLE users MODIFY name varchar(10);
