-- expect: none
-- source: observed on PostgreSQL 15 here: ALTER TYPE ... ADD VALUE succeeds inside a transaction block (allowed since 12: https://www.postgresql.org/docs/12/release-12.html)
-- +ferry up
ALTER TYPE mood ADD VALUE 'happy';
