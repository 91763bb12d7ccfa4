-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11.19 here: LOCK=NONE is not supported. Reason: Adding an auto-increment column requires a lock. Try LOCK=SHARED
-- +ferry up
ALTER TABLE events ADD COLUMN seq bigint NOT NULL AUTO_INCREMENT UNIQUE;
