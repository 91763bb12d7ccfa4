-- expect: none
-- source: CREATE VIEW changes the data dictionary only; no table lock that blocks writes
-- +ferry up
CREATE VIEW active_users AS SELECT id, email FROM users WHERE created_at > now() - INTERVAL 30 DAY;
