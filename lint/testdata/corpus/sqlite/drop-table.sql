-- expect: drop-table
-- source: the running release's queries on orders fail once it is dropped
-- +ferry up
DROP TABLE orders;
