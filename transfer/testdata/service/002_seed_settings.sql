-- +goose Up
-- A row a migration inserts: an import replaces it with the export's.
INSERT INTO settings (k, v) VALUES ('theme', 'light');
