-- expect: none
-- source: observed on PostgreSQL 15 here: validation scans only the new, empty payments (no scan of users); users gets ShareRowExclusiveLock for the short transaction
-- +ferry up
CREATE TABLE payments (id bigserial PRIMARY KEY, user_id bigint NOT NULL, amount numeric(10,2));
ALTER TABLE payments ADD CONSTRAINT payments_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
