-- expect: none
-- source: observed on PostgreSQL 15 here: no 'validating foreign key constraint' and no scan of orders or users: a new all-NULL column's FK is marked valid without a check (transformFKConstraints skipValidation); locks are taken for the catalog change only
-- +ferry up
ALTER TABLE orders ADD COLUMN referrer_id bigint REFERENCES users (id);
