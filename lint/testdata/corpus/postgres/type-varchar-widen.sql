-- expect: none
-- source: observed on PostgreSQL 15 here: varchar(20) to varchar(50): relfilenode unchanged, no scan; https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
-- +ferry up
ALTER TABLE orders ALTER COLUMN status TYPE varchar(50);
