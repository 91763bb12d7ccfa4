-- expect: none
-- source: the table is created in this migration: SET LOGGED rewrites only the new, empty table
-- +ferry up
CREATE UNLOGGED TABLE import_batch (id bigserial PRIMARY KEY, payload jsonb);
ALTER TABLE import_batch SET LOGGED;
