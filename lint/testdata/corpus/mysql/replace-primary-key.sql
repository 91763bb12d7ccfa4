-- expect: mysql-table-rebuild
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Dropping a primary key and adding another: In Place Yes, Rebuilds Table Yes, DML Yes); observed on MariaDB 10.11.19 here: INSTANT/NOCOPY refused, ALGORITHM=INPLACE, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE sessions DROP PRIMARY KEY, ADD PRIMARY KEY (token, user_id);
