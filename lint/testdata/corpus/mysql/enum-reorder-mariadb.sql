-- expect: mysql-blocks-writes
-- target: mariadb 10.11
-- source: observed on MariaDB 10.11 here: a member inserted before the others -> ERROR 1846 ALGORITHM=INPLACE is not supported. Reason: Cannot change column type. Try ALGORITHM=COPY
-- +ferry up
ALTER TABLE tickets MODIFY state enum('void','new','done');
