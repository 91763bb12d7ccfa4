-- expect: drop-column
-- source: the running release may still select or insert users.age; those statements fail once it is gone
-- +ferry up
ALTER TABLE users DROP COLUMN age;
