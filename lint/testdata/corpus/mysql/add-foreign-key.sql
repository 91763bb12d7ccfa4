-- expect: mysql-blocks-writes
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Adding a foreign key constraint: INPLACE only when foreign_key_checks is disabled, otherwise only COPY); observed on MariaDB 10.11.19 here: Adding foreign keys needs foreign_key_checks=OFF. Try ALGORITHM=COPY
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_referrer_fk FOREIGN KEY (referrer_id) REFERENCES users (id);
