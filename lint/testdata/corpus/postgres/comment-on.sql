-- expect: none
-- source: COMMENT ON changes the catalog only (ShareUpdateExclusiveLock)
-- +ferry up
COMMENT ON COLUMN users.score IS 'loyalty points';
