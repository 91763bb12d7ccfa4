-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: INSTANT/NOCOPY/INPLACE refused (Try ALGORITHM=COPY); default run copies 5000 rows
-- +ferry up
ALTER TABLE users ADD CHECK (age >= 0);
