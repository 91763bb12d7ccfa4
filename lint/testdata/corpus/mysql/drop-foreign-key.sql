-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Dropping a foreign key constraint: In Place Yes, Rebuilds No, DML Yes); observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE orders DROP FOREIGN KEY orders_user_fk;
