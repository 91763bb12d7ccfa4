-- expect: none
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11 here: appending an ENUM member is accepted with ALGORITHM=INSTANT; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html (modifying the definition of an ENUM or SET column by adding members to the end: instant)
-- +ferry up
ALTER TABLE tickets MODIFY state enum('new','done','void');
