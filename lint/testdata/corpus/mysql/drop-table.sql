-- expect: drop-table
-- source: the running release's queries on sessions fail once it is dropped
-- +ferry up
DROP TABLE sessions;
