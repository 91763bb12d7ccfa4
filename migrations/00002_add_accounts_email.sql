-- +ferry up
ALTER TABLE accounts ADD COLUMN email VARCHAR(255);
CREATE UNIQUE INDEX accounts_email_idx ON accounts (email);

-- +ferry down
DROP INDEX accounts_email_idx; -- on MySQL: DROP INDEX accounts_email_idx ON accounts
ALTER TABLE accounts DROP COLUMN email;
