-- expect: index-not-concurrent
-- source: https://www.postgresql.org/docs/current/sql-createindex.html (an index on a partitioned table is built on every partition under SHARE locks; CONCURRENTLY is refused on partitioned tables)
-- +ferry up
CREATE INDEX events_at_idx ON events (at);
