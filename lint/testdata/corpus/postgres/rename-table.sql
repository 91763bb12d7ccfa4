-- expect: rename-table
-- source: the running release's queries still name orders and fail (relation "orders" does not exist)
-- +ferry up
ALTER TABLE orders RENAME TO purchases;
