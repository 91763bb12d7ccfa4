-- expect: none
-- source: in a no-transaction migration ADD COLUMN commits at once and releases its AccessExclusiveLock before the UPDATE starts
-- +ferry up
-- +ferry no-transaction
ALTER TABLE users ADD COLUMN plan text;
UPDATE users SET plan = 'free';
