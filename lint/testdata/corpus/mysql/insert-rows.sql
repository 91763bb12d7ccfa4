-- expect: none
-- source: plain INSERT: row locks only
-- +ferry up
INSERT INTO users (email, name) VALUES ('support@example.com', 'support');
