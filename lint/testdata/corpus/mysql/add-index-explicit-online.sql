-- expect: none
-- source: ALGORITHM=INPLACE, LOCK=NONE: writes go on (observed on MariaDB 10.11.19 here: succeeds)
-- +ferry up
ALTER TABLE users ADD INDEX users_email_idx (email), ALGORITHM=INPLACE, LOCK=NONE;
