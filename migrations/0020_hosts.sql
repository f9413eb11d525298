-- Hypervisor hosts and the join tokens agents register with (backend/hosts).
-- Portable SQL: TEXT keys, timestamps as UTC RFC 3339 text, booleans as
-- INTEGER 0/1, inventory as JSON text.

CREATE TABLE hosts (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL UNIQUE,
    url             TEXT NOT NULL,
    -- secret is the agent's HMAC key (base64). Both sides sign with it, so
    -- it is kept in clear; re-joining rotates it.
    secret          TEXT NOT NULL,
    inventory       TEXT NOT NULL DEFAULT '{}',
    last_heartbeat  TEXT NOT NULL DEFAULT '',
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT NOT NULL DEFAULT '',
    forced_down     INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- Join tokens are multi-use until they expire; only their SHA-256 is kept.
CREATE TABLE host_join_tokens (
    token_hash TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
