-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Setting a column default value: Instant Yes); observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'pending';
