-- expect: none
-- source: a materialized view created in the same migration has no readers yet
-- +ferry up
CREATE MATERIALIZED VIEW IF NOT EXISTS user_counts AS SELECT count(*) AS n FROM users;
REFRESH MATERIALIZED VIEW user_counts;
