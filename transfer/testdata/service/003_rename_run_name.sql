-- +goose Up
ALTER TABLE runs RENAME COLUMN name TO title;
