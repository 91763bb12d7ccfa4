-- expect: none
-- source: https://www.postgresql.org/docs/current/sql-refreshmaterializedview.html (CONCURRENTLY lets reads go on; needs a unique index, which order_totals has)
-- +ferry up
REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals;
