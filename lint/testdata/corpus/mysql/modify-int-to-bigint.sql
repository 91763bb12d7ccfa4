-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Changing the column data type: only ALGORITHM=COPY, Permits Concurrent DML No)
-- +ferry up
ALTER TABLE users MODIFY age bigint;
