-- expect: none
-- source: ALGORITHM=INSTANT: the server adds it instantly or refuses, never copies; https://dev.mysql.com/doc/refman/8.4/en/innodb-online-ddl-operations.html
-- +ferry up
ALTER TABLE orders ADD COLUMN coupon varchar(32), ALGORITHM=INSTANT;
