-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11 here: ALTER TABLE tickets MODIFY code varchar(100), ALGORITHM=INPLACE, LOCK=NONE -> ERROR 1846 Cannot change column type. Try ALGORITHM=COPY (160 bytes is over 127 and not over 255)
-- +ferry up
ALTER TABLE tickets MODIFY code varchar(100);
