-- +ferry up
-- Example migrations shipped with ferry: `go run ./cmd/ferry up` applies
-- them to ./ferry.db. They use SQL that PostgreSQL, MySQL and SQLite share.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- +ferry down
DROP TABLE accounts;
