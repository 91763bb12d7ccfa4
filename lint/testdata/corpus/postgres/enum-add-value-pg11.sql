-- expect: enum-value-in-transaction
-- target: postgres 11
-- source: https://www.postgresql.org/docs/11/sql-altertype.html (ALTER TYPE ... ADD VALUE cannot be executed inside a transaction block)
-- +ferry up
ALTER TYPE mood ADD VALUE 'happy';
