-- expect: table-rewrite
-- source: observed on PostgreSQL 15 here: DEBUG rewriting table "users", relfilenode changed, AccessExclusiveLock
-- +ferry up
ALTER TABLE users SET UNLOGGED;
