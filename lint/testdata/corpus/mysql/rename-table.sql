-- expect: rename-table
-- source: the running release's queries still name users (observed on MariaDB 10.11.19 here: ALTER TABLE users RENAME TO members, ALGORITHM=INSTANT succeeds: no lock problem, only the release)
-- +ferry up
ALTER TABLE users RENAME TO members;
