-- expect: none
-- source: the table is created in this migration: no running release uses either name
-- +ferry up
CREATE TABLE coupon_drafts (id bigserial PRIMARY KEY, code text NOT NULL);
ALTER TABLE coupon_drafts RENAME TO coupons;
ALTER TABLE coupons RENAME COLUMN code TO coupon_code;
