-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: after SET foreign_key_checks = 0 in the session, ADD FOREIGN KEY ..., ALGORITHM=NOCOPY, LOCK=NONE succeeds; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (INPLACE is supported when foreign_key_checks is disabled)
-- +ferry up
SET foreign_key_checks = 0;
ALTER TABLE users ADD CONSTRAINT users_referrer_fk FOREIGN KEY (referrer_id) REFERENCES users (id);
SET foreign_key_checks = 1;
