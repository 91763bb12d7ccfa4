-- expect: rename-table
-- source: still a rename the old release breaks on; marked contract, so the finding stays at info severity
-- +ferry up
-- +ferry contract
ALTER TABLE orders RENAME TO purchases;
