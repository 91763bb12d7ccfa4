-- expect: mysql-blocks-writes
-- source: adding an enforced CHECK validates existing rows with ALGORITHM=COPY (https://github.com/shopware/shopware/pull/14545: ADD CONSTRAINT CHECK falls back to COPY); observed on MariaDB 10.11.19 here: ALGORITHM=INPLACE is not supported for this operation. Try ALGORITHM=COPY
-- +ferry up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);
