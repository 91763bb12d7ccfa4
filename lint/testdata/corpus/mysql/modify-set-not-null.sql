-- expect: mysql-table-rebuild
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Making a column NOT NULL: In Place Yes, Rebuilds Table Yes, DML Yes); observed on MariaDB 10.11.19 here: INSTANT and NOCOPY refused, INPLACE, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE users MODIFY name varchar(20) NOT NULL;
