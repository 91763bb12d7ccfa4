-- expect: none
-- source: CREATE INDEX on an existing table: no schema change the running release sees; observed with SQLite 3.40.1 here (table with rows): succeeds
-- +ferry up
CREATE INDEX users_email_idx ON users (email);
