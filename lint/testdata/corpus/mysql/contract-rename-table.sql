-- expect: rename-table
-- source: still a rename; marked contract, so the finding stays at info severity
-- +ferry up
-- +ferry contract
RENAME TABLE orders TO purchases;
