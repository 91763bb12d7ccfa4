-- expect: rename-table
-- source: the running release's queries still name orders; https://dev.mysql.com/doc/refman/8.4/en/rename-table.html
-- +ferry up
RENAME TABLE orders TO purchases;
