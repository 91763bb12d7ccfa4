-- expect: none
-- source: observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds; the DEFAULT keeps old INSERTs working; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html
-- +ferry up
ALTER TABLE users ADD COLUMN plan varchar(20) NOT NULL DEFAULT 'free';
