-- expect: none
-- source: observed on PostgreSQL 15 here: only the table created in this migration is locked; it has no rows and no release uses it yet
-- +ferry up
CREATE TABLE invoices (id bigserial PRIMARY KEY, order_id bigint NOT NULL);
ALTER TABLE invoices ADD COLUMN number text NOT NULL;
ALTER TABLE invoices ADD COLUMN token uuid DEFAULT gen_random_uuid();
