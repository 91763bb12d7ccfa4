-- expect: drop-column
-- source: still a drop; marked contract, so the finding stays at info severity
-- +ferry up
-- +ferry contract
ALTER TABLE users DROP COLUMN age;
