-- expect: add-column-rewrite
-- source: lint cannot know a user function's volatility, so it warns; this one is VOLATILE, and observed on PostgreSQL 15 here the table is rewritten (https://www.postgresql.org/docs/current/sql-altertable.html)
-- +ferry up
CREATE FUNCTION make_token() RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT md5(random()::text) $$;
ALTER TABLE audit ADD COLUMN token text DEFAULT make_token();
