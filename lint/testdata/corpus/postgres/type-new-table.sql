-- expect: none
-- source: observed on PostgreSQL 15 here: only the table created in this migration is rewritten (empty)
-- +ferry up
CREATE TABLE counters (id bigserial PRIMARY KEY, hits int NOT NULL DEFAULT 0);
ALTER TABLE counters ALTER COLUMN hits TYPE bigint;
