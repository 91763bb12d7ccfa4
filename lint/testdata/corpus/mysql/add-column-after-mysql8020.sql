-- expect: mysql-table-rebuild
-- target: mysql 8.0.20
-- source: https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html (before 8.0.29 INSTANT adds a column only as the last one; AFTER/FIRST is INPLACE with a rebuild)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50) AFTER email;
