-- expect: concurrent-in-transaction
-- source: https://www.postgresql.org/docs/current/sql-vacuum.html ("VACUUM cannot be executed inside a transaction block")
-- +ferry up
VACUUM (ANALYZE) orders;
