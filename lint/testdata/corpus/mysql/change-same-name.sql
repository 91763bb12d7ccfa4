-- expect: none
-- source: CHANGE to the same name and definition is a no-op (observed on MariaDB 10.11.19 here: ALGORITHM=INSTANT succeeds)
-- +ferry up
ALTER TABLE users CHANGE name name varchar(20);
