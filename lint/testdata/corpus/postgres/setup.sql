-- The schema every PostgreSQL corpus case runs against: existing tables.
-- +ferry up
CREATE TABLE users (id bigserial PRIMARY KEY, email varchar(100) NOT NULL, name text, age int, score numeric(10,2), created_at timestamp);
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, status varchar(20), total numeric(10,2), note text, placed_at timestamptz);
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE INDEX orders_user_idx ON orders (user_id);
CREATE MATERIALIZED VIEW order_totals AS SELECT id AS user_id, 0::numeric AS total FROM generate_series(1, 3) AS id;
CREATE UNIQUE INDEX order_totals_user ON order_totals (user_id);
CREATE TABLE audit (id int PRIMARY KEY, at timestamp(3), v varchar(20));
CREATE TABLE events (id bigint, at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
