-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Extending VARCHAR column size: In Place Yes, Rebuilds No, DML Yes, while the length prefix stays 1 byte: 20 and 40 utf8mb4 chars are 80 and 160 bytes, both <= 255); observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE users MODIFY name varchar(40);
