-- expect: unique-without-index
-- source: observed on PostgreSQL 15 here: builds users_email_excl under AccessExclusiveLock on users
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_email_excl EXCLUDE USING btree (email WITH =);
