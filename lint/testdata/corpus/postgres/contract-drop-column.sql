-- expect: drop-column
-- source: still a drop of a column the old release may use; marked contract, so the finding stays at info severity (lint/check.go finding)
-- +ferry up
-- +ferry contract
ALTER TABLE users DROP COLUMN IF EXISTS age;
