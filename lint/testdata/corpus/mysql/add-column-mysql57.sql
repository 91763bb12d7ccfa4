-- expect: mysql-table-rebuild
-- target: mysql 5.7
-- source: https://dev.mysql.com/doc/refman/5.7/en/innodb-online-ddl-operations.html (Adding a column: In Place Yes, Rebuilds Table Yes, Permits Concurrent DML Yes)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50);
