-- expect: drop-column,mysql-table-rebuild
-- target: mysql 8.0.20
-- source: https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html (Dropping a column: INSTANT only from 8.0.29; before, In Place Yes, Rebuilds Table Yes)
-- +ferry up
ALTER TABLE users DROP COLUMN age;
