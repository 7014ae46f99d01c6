-- Tables of the PostgreSQL authentication and ACL backends (auth.pgsql.*),
-- in the layout of EMQX 4's emqx_auth_pgsql, with example rows. Run once by
-- the postgres image from /docker-entrypoint-initdb.d.

CREATE TABLE IF NOT EXISTS mqtt_user (
  id SERIAL PRIMARY KEY,
  username VARCHAR(100) UNIQUE NOT NULL,
  password VARCHAR(100) NOT NULL,   -- hex digest per auth.pgsql.password_hash (sha256)
  salt VARCHAR(40),
  is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
  created TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS mqtt_acl (
  id SERIAL PRIMARY KEY,
  allow INTEGER NOT NULL,           -- 1 allow, 0 deny
  ipaddr VARCHAR(60),
  username VARCHAR(100),
  clientid VARCHAR(100),
  access INTEGER NOT NULL,          -- 1 subscribe, 2 publish, 3 both
  topic VARCHAR(100) NOT NULL
);

-- device1 / device1-secret: a device; backend / backend-secret: a superuser.
-- Passwords are sha256 hex digests: printf '%s' 'device1-secret' | sha256sum
INSERT INTO mqtt_user (username, password, is_superuser) VALUES
  ('device1', '31f1a3b98ae337ddbed5c2e9b2b6c7bc0bda29bfdbef2e1d10a35469076bb5a5', FALSE),
  ('backend', '33484fcb009e6f61a9d8b506b6d311d3123d600f8a8fe2c22f6824926db5d12b', TRUE)
ON CONFLICT (username) DO NOTHING;

-- Rules are tried in id order (auth.pgsql.acl_query orders by id); the
-- first that applies decides, none leaves it to acl_nomatch.
INSERT INTO mqtt_acl (allow, username, access, topic) VALUES
  (1, '$all', 3, 'devices/%u/#'),
  (1, '$all', 1, 'public/#'),
  (0, '$all', 3, '#');
