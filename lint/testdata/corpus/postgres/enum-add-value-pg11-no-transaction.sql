-- expect: none
-- target: postgres 11
-- source: https://www.postgresql.org/docs/11/sql-altertype.html: outside a transaction block ADD VALUE works
-- +ferry up
-- +ferry no-transaction
ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy';
