-- expect: drop-table
-- source: still a drop; marked contract, so the finding stays at info severity
-- +ferry up
-- +ferry contract
DROP TABLE IF EXISTS orders;
