-- expect: none
-- source: the table is created in this migration: no rows and no running release use it
-- +ferry up
CREATE TABLE coupons (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code varchar(20) NOT NULL,
  user_id bigint,
  CONSTRAINT coupons_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
ALTER TABLE coupons MODIFY code varchar(200) NOT NULL;
ALTER TABLE coupons ADD COLUMN discount int NOT NULL;
ALTER TABLE coupons ADD FULLTEXT INDEX coupons_code_ft (code);
