-- expect: none
-- source: CREATE VIEW takes AccessShareLock on users only (no writes blocked)
-- +ferry up
CREATE VIEW active_users AS SELECT id, email FROM users WHERE created_at > now() - interval '30 days';
