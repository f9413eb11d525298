-- Identity (Keystone v3). Portable SQL: TEXT keys, timestamps as UTC RFC 3339
-- text, booleans as INTEGER 0/1.

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains(id),
    parent_id   TEXT REFERENCES projects(id),
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE INDEX projects_parent ON projects(parent_id);

CREATE TABLE project_tags (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (project_id, tag)
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    domain_id           TEXT NOT NULL REFERENCES domains(id),
    enabled             INTEGER NOT NULL DEFAULT 1,
    default_project_id  TEXT,
    description         TEXT NOT NULL DEFAULT '',
    email               TEXT NOT NULL DEFAULT '',
    password_hash       TEXT NOT NULL DEFAULT '',
    password_changed_at TEXT,
    extra               TEXT NOT NULL DEFAULT '{}',
    created_at          TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains(id),
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

-- domain_id is '' for global roles, so UNIQUE works the same on every engine.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE implied_roles (
    prior_role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

-- actor_type: 'user' or 'group'; target_type: 'project', 'domain' or 'system'
-- (target_id 'all' for the system).
CREATE TABLE role_assignments (
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    inherited   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited)
);
CREATE INDEX role_assignments_target ON role_assignments(target_type, target_id);
CREATE INDEX role_assignments_role ON role_assignments(role_id);

CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES regions(id),
    created_at       TEXT NOT NULL
);

CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

CREATE TABLE endpoints (
    id         TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    interface  TEXT NOT NULL,
    region_id  TEXT REFERENCES regions(id),
    url        TEXT NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE application_credentials (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    description  TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    expires_at   TEXT,
    unrestricted INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE application_credential_roles (
    application_credential_id TEXT NOT NULL REFERENCES application_credentials(id) ON DELETE CASCADE,
    role_id                   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (application_credential_id, role_id)
);

-- Tokens are self-contained; revoking them records an event that matches
-- every token issued before issued_before with the given attributes. Events
-- older than the longest token lifetime are pruned.
CREATE TABLE revocation_events (
    id                        TEXT PRIMARY KEY,
    user_id                   TEXT NOT NULL DEFAULT '',
    project_id                TEXT NOT NULL DEFAULT '',
    domain_id                 TEXT NOT NULL DEFAULT '',
    role_id                   TEXT NOT NULL DEFAULT '',
    audit_id                  TEXT NOT NULL DEFAULT '',
    application_credential_id TEXT NOT NULL DEFAULT '',
    issued_before             TEXT NOT NULL,
    revoked_at                TEXT NOT NULL
);

-- Secrets the control plane generates once and every replica shares, such as
-- the token signing key.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
