-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Adding a FULLTEXT index: Permits Concurrent DML No); observed on MariaDB 10.11.19 here: LOCK=NONE is not supported. Reason: Fulltext index creation requires a lock. Try LOCK=SHARED
-- +ferry up
ALTER TABLE users ADD FULLTEXT INDEX users_bio_ft (bio);
