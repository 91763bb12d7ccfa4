-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (secondary index: In Place, DML Yes); observed on MariaDB 10.11.19 here: ALGORITHM=NOCOPY, LOCK=NONE succeeds
-- +ferry up
CREATE INDEX orders_status_idx ON orders (status);
