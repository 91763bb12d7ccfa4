-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported. Reason: Cannot change column type. Try ALGORITHM=COPY (default run: 5000 rows affected)
-- +ferry up
ALTER TABLE users MODIFY age bigint;
