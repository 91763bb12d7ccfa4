-- expect: not-null-without-default
-- source: observed on PostgreSQL 15 here: ERROR: column "plan" of relation "users" contains null values
-- +ferry up
ALTER TABLE users ADD COLUMN plan text NOT NULL;
