-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: MODIFY name varchar(20) AFTER id, ALGORITHM=INSTANT succeeds (MariaDB 10.4+ reorders columns instantly)
-- +ferry up
ALTER TABLE users MODIFY name varchar(20) AFTER id;
