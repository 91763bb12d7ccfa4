-- expect: none
-- source: observed on PostgreSQL 15 here: no scan; AccessExclusiveLock only for the catalog change; https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;
