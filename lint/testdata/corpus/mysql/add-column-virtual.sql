-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Adding a VIRTUAL column: Instant Yes); observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds
-- +ferry up
ALTER TABLE users ADD COLUMN email_domain varchar(100) AS (substring_index(email, '@', -1)) VIRTUAL;
