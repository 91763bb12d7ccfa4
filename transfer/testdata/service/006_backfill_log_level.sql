-- +goose Up
ALTER TABLE logs ADD COLUMN level VARCHAR(10);
UPDATE logs SET level = CASE WHEN message LIKE 'ERROR%' THEN 'error' ELSE 'info' END;
