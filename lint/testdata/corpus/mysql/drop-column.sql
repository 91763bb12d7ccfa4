-- expect: drop-column
-- source: the running release may still read or write users.age (https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html: Dropping a column is Instant since 8.0.29, so no rebuild)
-- +ferry up
ALTER TABLE users DROP COLUMN age;
