-- expect: drop-column
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: DROP COLUMN, ALGORITHM=INSTANT succeeds (no rebuild); the old release may still use the column
-- +ferry up
ALTER TABLE users DROP COLUMN age;
