-- expect: mysql-table-rebuild
-- target: mariadb 10.2
-- source: https://mariadb.com/kb/en/innodb-online-ddl-operations-with-the-instant-alter-algorithm/ (instant ADD COLUMN from 10.3.2; before, INPLACE with a rebuild)
-- +ferry up
ALTER TABLE users ADD COLUMN nickname varchar(50);
