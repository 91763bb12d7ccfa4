-- expect: index-not-concurrent
-- +ferry up
CREATE INDEX orders_status_idx ON orders (status);
