-- A contract migration: it drops the column release v1 reads, so v1 breaks
-- once it is applied. ferry up refuses it while v1 has live instances.
-- +ferry contract
-- +ferry up
ALTER TABLE users DROP COLUMN name;
