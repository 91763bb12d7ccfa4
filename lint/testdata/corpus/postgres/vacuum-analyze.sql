-- expect: none
-- source: observed on PostgreSQL 15 here: plain VACUUM takes ShareUpdateExclusiveLock: reads and writes go on; https://www.postgresql.org/docs/current/sql-vacuum.html
-- +ferry up
-- +ferry no-transaction
VACUUM (ANALYZE) orders;
