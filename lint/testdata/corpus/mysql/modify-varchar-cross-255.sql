-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (in-place VARCHAR extension only within 0-255 bytes or from 256 up; varchar(20)->varchar(100) utf8mb4 is 80->400 bytes, so ALGORITHM=COPY, no concurrent DML)
-- +ferry up
ALTER TABLE users MODIFY name varchar(100);
