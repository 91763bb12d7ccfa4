-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html#online-ddl-partitioning (PARTITION BY: In Place No, Permits DML No); observed on MariaDB 10.11.19 here: LOCK=NONE is not supported. Reason: COPY algorithm requires a lock; lint does not parse partition clauses
-- +ferry up
ALTER TABLE events PARTITION BY HASH (id) PARTITIONS 4;
