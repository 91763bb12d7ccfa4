-- The schema every MySQL/MariaDB corpus case runs against: existing tables.
-- +ferry up
CREATE TABLE users (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(100) NOT NULL,
  name varchar(20),
  age int,
  score decimal(10,2),
  bio text,
  referrer_id bigint,
  created_at datetime,
  KEY users_created_idx (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id bigint NOT NULL,
  status varchar(20) NOT NULL DEFAULT 'new',
  total decimal(10,2),
  note text,
  placed_at datetime,
  KEY orders_user_idx (user_id),
  CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE sessions (
  token char(32) NOT NULL PRIMARY KEY,
  user_id bigint NOT NULL,
  expires_at datetime
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE events (
  id bigint NOT NULL,
  kind varchar(20),
  payload text,
  created_at datetime
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE metrics (
  id bigint NOT NULL,
  recorded_year int NOT NULL,
  value double,
  PRIMARY KEY (id, recorded_year)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE (recorded_year) (PARTITION p2024 VALUES LESS THAN (2025), PARTITION p2025 VALUES LESS THAN (2026));
CREATE TABLE tickets (id bigint PRIMARY KEY, code varchar(40), tag varchar(32), state enum('new','done')) DEFAULT CHARSET=utf8mb4;
