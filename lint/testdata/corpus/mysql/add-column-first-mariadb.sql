-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: ADD COLUMN ... FIRST, ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50) FIRST;
