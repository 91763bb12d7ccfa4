-- expect: index-not-concurrent
-- source: observed on PostgreSQL 15 here: SHARE lock on orders for the build, partial or not
-- +ferry up
CREATE INDEX IF NOT EXISTS orders_status_idx ON orders (status) WHERE status <> 'done';
