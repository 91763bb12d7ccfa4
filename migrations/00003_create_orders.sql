-- +ferry up
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    total_cents INTEGER NOT NULL,
    note VARCHAR(200) -- a note; semicolons in comments are fine
);
INSERT INTO accounts (id, name, email) VALUES (1, 'example; with a semicolon', 'example@example.com');

-- +ferry down
DROP TABLE orders;
DELETE FROM accounts WHERE id = 1;
