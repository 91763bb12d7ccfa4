-- expect: none
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (secondary index, UNIQUE included: In Place, DML Yes); observed on MariaDB 10.11.19 here: ADD CONSTRAINT ... UNIQUE, ALGORITHM=NOCOPY, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
