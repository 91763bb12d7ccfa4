-- expect: none
-- source: observed on PostgreSQL 15 here: only the new table payments is locked; no existing table is touched
-- +ferry up
CREATE TABLE payments (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), amount numeric(10,2));
CREATE INDEX payments_user_idx ON payments (user_id);
