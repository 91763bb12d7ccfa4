-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Adding a column: Instant Yes, in any position)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50) AFTER email;
