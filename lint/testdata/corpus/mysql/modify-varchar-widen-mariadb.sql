-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: MODIFY name varchar(40), ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE users MODIFY COLUMN name varchar(40);
