-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: decimal(10,2) -> decimal(12,2): ALGORITHM=INPLACE is not supported. Reason: Cannot change column type (unlike PostgreSQL, a copy)
-- +ferry up
ALTER TABLE users MODIFY score decimal(12,2);
