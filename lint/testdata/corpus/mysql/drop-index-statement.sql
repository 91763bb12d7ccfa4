-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Dropping an index: In Place, DML Yes)
-- +ferry up
DROP INDEX users_created_idx ON users;
