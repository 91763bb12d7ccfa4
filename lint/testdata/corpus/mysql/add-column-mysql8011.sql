-- expect: mysql-table-rebuild
-- target: mysql 8.0.11
-- source: INSTANT ADD COLUMN arrived in 8.0.12: https://dev.mysql.com/doc/relnotes/mysql/8.0/en/news-8-0-12.html; before it ADD COLUMN is INPLACE with a rebuild (https://dev.mysql.com/doc/refman/5.7/en/innodb-online-ddl-operations.html)
-- +ferry up
ALTER TABLE orders ADD COLUMN coupon varchar(32);
