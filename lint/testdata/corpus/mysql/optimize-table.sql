-- expect: mysql-table-rebuild
-- source: https://dev.mysql.com/doc/refman/8.4/en/optimize-table.html (for InnoDB, OPTIMIZE TABLE is mapped to ALTER TABLE ... FORCE, an online in-place rebuild)
-- +ferry up
OPTIMIZE TABLE orders;
