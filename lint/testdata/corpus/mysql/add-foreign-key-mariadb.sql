-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: INSTANT/NOCOPY/INPLACE refused: Adding foreign keys needs foreign_key_checks=OFF; default run copies 5000 rows
-- +ferry up
ALTER TABLE users ADD FOREIGN KEY (referrer_id) REFERENCES users (id);
