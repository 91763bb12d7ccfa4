-- expect: none
-- source: https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE (CREATE INDEX ON ONLY the partitioned parent creates an invalid index without touching partitions); observed on PostgreSQL 15 here: no scan, no rewrite
-- +ferry up
CREATE INDEX events_kind_idx ON ONLY events (kind);
