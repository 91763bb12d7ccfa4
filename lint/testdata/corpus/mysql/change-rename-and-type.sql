-- expect: rename-column,mysql-blocks-writes
-- source: renames users.age, and https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Changing the column data type: ALGORITHM=COPY); observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported. Reason: Cannot change column type
-- +ferry up
ALTER TABLE users CHANGE COLUMN age age_years bigint;
