-- expect: none
-- source: plain UPDATE: no schema change
-- +ferry up
UPDATE orders SET status = 'new' WHERE status = '';
