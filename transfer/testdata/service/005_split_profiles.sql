-- +goose Up
CREATE TABLE user_profiles (
    user_id BIGINT PRIMARY KEY,
    email VARCHAR(200),
    CONSTRAINT profiles_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
);
INSERT INTO user_profiles (user_id, email) SELECT id, email FROM users WHERE email IS NOT NULL;
ALTER TABLE users DROP COLUMN email;
