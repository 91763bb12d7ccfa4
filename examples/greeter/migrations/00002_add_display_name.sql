-- An expand migration: it adds what release v2 reads, and v1, which reads
-- only users.name, keeps working.
-- +ferry up
ALTER TABLE users ADD COLUMN display_name VARCHAR(100);
UPDATE users SET display_name = name;

-- +ferry down
ALTER TABLE users DROP COLUMN display_name;
