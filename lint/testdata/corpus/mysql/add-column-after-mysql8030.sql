-- expect: none
-- target: mysql 8.0.30
-- source: https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html (as of 8.0.29 ALGORITHM=INSTANT adds a column in any position)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50) AFTER email;
