-- Compute (Nova v2.1): flavors, key pairs, instances with their actions,
-- pending agent operations, the scheduler's allocations, quotas, console
-- tokens, aggregates and server groups. Portable SQL: TEXT keys,
-- timestamps as UTC RFC 3339 text, booleans as INTEGER 0/1. Hosts are the
-- hosts registry's; compute refers to them by ID without a foreign key so
-- neither service reaches into the other's tables.

CREATE TABLE flavors (
    id           TEXT PRIMARY KEY,          -- Nova's flavorid, any string
    name         TEXT NOT NULL UNIQUE,
    vcpus        INTEGER NOT NULL,
    memory_mb    INTEGER NOT NULL,
    root_gb      INTEGER NOT NULL,
    ephemeral_gb INTEGER NOT NULL DEFAULT 0,
    swap_mb      INTEGER NOT NULL DEFAULT 0,
    rxtx_factor  REAL NOT NULL DEFAULT 1.0,
    is_public    INTEGER NOT NULL DEFAULT 1,
    disabled     INTEGER NOT NULL DEFAULT 0,
    description  TEXT,
    created_at   TEXT NOT NULL
);

CREATE TABLE flavor_extra_specs (
    flavor_id TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (flavor_id, key)
);

CREATE TABLE flavor_projects (
    flavor_id  TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE keypairs (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE instances (
    uuid              TEXT PRIMARY KEY,
    seq               INTEGER NOT NULL UNIQUE,  -- instance-%08x, as Nova's id
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    hostname          TEXT NOT NULL,
    description       TEXT,
    image_ref         TEXT NOT NULL DEFAULT '',
    image_meta        TEXT NOT NULL DEFAULT '{}', -- JSON: what the agent needs of the image
    flavor            TEXT NOT NULL,            -- JSON snapshot of the flavor
    vcpus             INTEGER NOT NULL,
    memory_mb         INTEGER NOT NULL,
    root_gb           INTEGER NOT NULL,
    old_flavor        TEXT,                     -- JSON, during a resize
    new_flavor        TEXT,                     -- JSON, during a resize
    key_name          TEXT,
    key_data          TEXT,
    user_data         TEXT,
    config_drive      INTEGER NOT NULL DEFAULT 0,
    availability_zone TEXT,
    requested_az      TEXT,
    networks          TEXT NOT NULL DEFAULT '',
    scheduler_hints   TEXT NOT NULL DEFAULT '{}',
    vm_state          TEXT NOT NULL,
    task_state        TEXT,
    power_state       INTEGER NOT NULL DEFAULT 0,
    host_id           TEXT,
    node              TEXT,
    vnc_port          INTEGER NOT NULL DEFAULT 0,
    locked            INTEGER NOT NULL DEFAULT 0,
    locked_by         TEXT,
    locked_reason     TEXT,
    access_ipv4       TEXT NOT NULL DEFAULT '',
    access_ipv6       TEXT NOT NULL DEFAULT '',
    reservation_id    TEXT NOT NULL,
    launch_index      INTEGER NOT NULL DEFAULT 0,
    progress          INTEGER NOT NULL DEFAULT 0,
    fault_code        INTEGER,
    fault_message     TEXT,
    fault_details     TEXT,
    fault_created     TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    launched_at       TEXT,
    terminated_at     TEXT,
    deleted_at        TEXT,
    deleted           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_project ON instances(project_id, deleted);
CREATE INDEX instances_host ON instances(host_id, deleted);
CREATE INDEX instances_updated ON instances(updated_at);

CREATE TABLE instance_metadata (
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, key)
);

CREATE TABLE instance_actions (
    id            TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    action        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    message       TEXT,
    start_time    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX instance_actions_instance ON instance_actions(instance_uuid, start_time);

CREATE TABLE instance_action_events (
    id          TEXT PRIMARY KEY,
    action_id   TEXT NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    start_time  TEXT NOT NULL,
    finish_time TEXT,
    result      TEXT,
    traceback   TEXT,
    host        TEXT,
    host_id     TEXT,
    details     TEXT
);
CREATE INDEX instance_action_events_action ON instance_action_events(action_id);

-- A pending call to an agent. The operation ID goes to the agent, which
-- reports the outcome under it; a retried call reuses it.
CREATE TABLE instance_operations (
    id            TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    host_id       TEXT NOT NULL,
    action_id     TEXT,
    event_id      TEXT,
    data          TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    deadline      TEXT NOT NULL
);
CREATE INDEX instance_operations_instance ON instance_operations(instance_uuid);

-- Placement-style allocations: what each consumer (an instance, or the
-- old flavor of a resizing instance) holds on a host. A claim inserts a row
-- in the same transaction that re-reads the host's sum.
CREATE TABLE allocations (
    consumer_id   TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL,
    host_id       TEXT NOT NULL,
    vcpus         INTEGER NOT NULL,
    memory_mb     INTEGER NOT NULL,
    disk_gb       INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX allocations_host ON allocations(host_id);
CREATE INDEX allocations_instance ON allocations(instance_uuid);

CREATE TABLE compute_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);

-- Console tokens are stored only as their SHA-256.
CREATE TABLE console_tokens (
    token_hash    TEXT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances(uuid) ON DELETE CASCADE,
    host_id       TEXT NOT NULL,
    port          INTEGER NOT NULL,
    console_type  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE aggregates (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE aggregate_hosts (
    aggregate_id INTEGER NOT NULL REFERENCES aggregates(id) ON DELETE CASCADE,
    host         TEXT NOT NULL,   -- the host's hostname, as Nova's service host
    PRIMARY KEY (aggregate_id, host)
);

CREATE TABLE aggregate_metadata (
    aggregate_id INTEGER NOT NULL REFERENCES aggregates(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, key)
);

CREATE TABLE server_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    policy     TEXT NOT NULL,
    rules      TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups(project_id);

CREATE TABLE server_group_members (
    group_id      TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
    instance_uuid TEXT NOT NULL,
    PRIMARY KEY (group_id, instance_uuid)
);
CREATE INDEX server_group_members_instance ON server_group_members(instance_uuid);

-- Integer IDs of hosts for the APIs before microversion 2.53.
CREATE TABLE compute_nodes (
    host_id TEXT PRIMARY KEY,
    num     INTEGER NOT NULL UNIQUE
);
