-- expect: none
-- source: the table is created and dropped in this migration: no running release uses it
-- +ferry up
CREATE TABLE scratch (id int);
DROP TABLE scratch;
