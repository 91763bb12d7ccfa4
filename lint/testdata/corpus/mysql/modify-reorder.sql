-- expect: mysql-table-rebuild
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Reordering columns: Instant No, In Place Yes, Rebuilds Table Yes)
-- +ferry up
ALTER TABLE users MODIFY name varchar(20) AFTER id;
