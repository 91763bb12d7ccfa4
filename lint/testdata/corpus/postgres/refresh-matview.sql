-- expect: table-rewrite
-- source: https://www.postgresql.org/docs/current/sql-refreshmaterializedview.html (without CONCURRENTLY the refresh holds an ACCESS EXCLUSIVE lock that blocks reads); observed on PostgreSQL 15 here: AccessExclusiveLock on order_totals and a new relfilenode
-- +ferry up
REFRESH MATERIALIZED VIEW order_totals;
