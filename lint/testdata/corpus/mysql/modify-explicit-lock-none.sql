-- expect: none
-- trace: skip (the server refuses LOCK=NONE here, which is what makes the migration safe: it fails instead of blocking writes)
-- source: with ALGORITHM=INPLACE, LOCK=NONE the server refuses the copy (observed on MariaDB 10.11: ERROR 1846 ALGORITHM=INPLACE is not supported. Reason: Cannot change column type) instead of blocking writes; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html
-- +ferry up
ALTER TABLE users MODIFY age bigint, ALGORITHM=INPLACE, LOCK=NONE;
