-- expect: none
-- source: observed on PostgreSQL 15 here: INSERT takes RowExclusiveLock only
-- +ferry up
INSERT INTO users (email, name) VALUES ('support@example.com', 'support');
