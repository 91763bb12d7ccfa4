-- expect: none
-- source: the table is created in this migration: no running release uses it
-- +ferry up
CREATE TABLE coupons (id INTEGER PRIMARY KEY, code TEXT NOT NULL, user_id INTEGER REFERENCES users (id));
INSERT INTO coupons (code) VALUES ('WELCOME');
ALTER TABLE coupons ADD COLUMN discount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE coupons RENAME COLUMN code TO coupon_code;
