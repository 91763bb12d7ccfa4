-- expect: mysql-table-rebuild
-- source: https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (Performing a null rebuild, ENGINE=InnoDB: In Place Yes, Rebuilds Table Yes, DML Yes); observed on MariaDB 10.11.19 here: INSTANT/NOCOPY refused, INPLACE, LOCK=NONE succeeds
-- +ferry up
ALTER TABLE users ENGINE=InnoDB;
