-- expect: not-null-without-default
-- source: observed on MariaDB 10.11.19 here: the ALTER succeeds (existing rows get ''), then the old release's INSERT INTO users (email) VALUES (...) fails: ERROR 1364 Field 'plan' doesn't have a default value (strict mode); https://dev.mysql.com/doc/refman/8.4/en/data-type-defaults.html
-- +ferry up
ALTER TABLE users ADD COLUMN plan varchar(20) NOT NULL;
