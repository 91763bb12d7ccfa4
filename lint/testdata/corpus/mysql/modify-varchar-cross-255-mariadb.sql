-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: MODIFY name varchar(100) (80 -> 400 bytes), ALGORITHM=INSTANT succeeds: MariaDB 10.4+ extends VARCHAR instantly across the 255-byte boundary (DYNAMIC row format); https://mariadb.com/kb/en/innodb-online-ddl-operations-with-the-instant-alter-algorithm/
-- +ferry up
ALTER TABLE users MODIFY name varchar(100);
