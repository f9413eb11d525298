-- Dashboard sessions for the scs session manager. expiry is Unix seconds so
-- the same SQL runs on PostgreSQL.
CREATE TABLE sessions (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry INTEGER NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions(expiry);
