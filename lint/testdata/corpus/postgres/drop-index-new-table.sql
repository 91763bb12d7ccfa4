-- expect: none
-- source: observed on PostgreSQL 15 here: only the table created in this migration is locked
-- +ferry up
CREATE TABLE audit_log (id bigserial PRIMARY KEY, happened_at timestamptz NOT NULL, what text);
CREATE INDEX audit_log_happened_idx ON audit_log (happened_at);
DROP INDEX audit_log_happened_idx;
