-- expect: not-analysed
-- source: a DO block runs arbitrary PL/pgSQL: lint does not parse it
-- +ferry up
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM users WHERE email = 'admin@example.com') THEN
    INSERT INTO users (email, name) VALUES ('admin@example.com', 'admin');
  END IF;
END
$$;
