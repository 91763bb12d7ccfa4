-- expect: none
-- trace: skip (the server refuses LOCK=NONE here, which is what makes the migration safe: it fails instead of blocking writes)
-- source: with LOCK=NONE the server refuses rather than block writes (observed on MariaDB 10.11: ERROR 1846 LOCK=NONE is not supported. Reason: Adding foreign keys needs foreign_key_checks=OFF. Try LOCK=SHARED)
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_referrer_fk FOREIGN KEY (referrer_id) REFERENCES users (id), LOCK=NONE;
