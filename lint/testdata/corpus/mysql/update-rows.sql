-- expect: none
-- source: plain UPDATE: row locks only, no DDL
-- +ferry up
UPDATE orders SET status = 'new' WHERE status = '';
