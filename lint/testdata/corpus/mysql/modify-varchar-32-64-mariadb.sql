-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11 here: varchar(32) to varchar(64) (128 to 256 bytes) needs ALGORITHM=COPY
-- +ferry up
ALTER TABLE tickets MODIFY tag varchar(64);
