-- +ferry up
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);
INSERT INTO users (id, name) VALUES (1, 'Ada');

-- +ferry down
DROP TABLE users;
