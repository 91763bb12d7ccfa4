-- expect: none
-- source: observed on PostgreSQL 15 here: a bounded UPDATE (1000 rows by the primary key index) after the DDL: the lock is held only briefly
-- +ferry up
ALTER TABLE users ADD COLUMN plan text;
UPDATE users SET plan = 'free' WHERE id <= 1000;
