-- Networking control plane (backend/network): Neutron's networks, subnets,
-- ports and their IP allocations, routers, floating IPs, security groups and
-- quotas. Portable SQL: TEXT UUID keys, timestamps as UTC RFC 3339 text,
-- booleans as INTEGER 0/1, small lists (allocation pools, routes, address
-- pairs) as JSON text. "Absent" text values are '' rather than NULL, except
-- where a foreign key or a UNIQUE constraint needs NULL.

CREATE TABLE net_networks (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL DEFAULT '',
    description           TEXT NOT NULL DEFAULT '',
    admin_state_up        INTEGER NOT NULL DEFAULT 1,
    status                TEXT NOT NULL,
    shared                INTEGER NOT NULL DEFAULT 0,
    external              INTEGER NOT NULL DEFAULT 0,
    network_type          TEXT NOT NULL,
    physical_network      TEXT NOT NULL DEFAULT '',
    -- NULL for flat networks.
    segmentation_id       INTEGER,
    mtu                   INTEGER NOT NULL,
    port_security_enabled INTEGER NOT NULL DEFAULT 1,
    revision_number       INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX net_networks_project ON net_networks (project_id);
-- One network per segment: a VNI, a VLAN on a physical network, or a whole
-- physical network for flat (segmentation_id NULL counts as -1).
CREATE UNIQUE INDEX net_networks_segment
    ON net_networks (network_type, physical_network, COALESCE(segmentation_id, -1));
CREATE INDEX net_networks_segment_id ON net_networks (network_type, physical_network, segmentation_id);

CREATE TABLE net_subnets (
    id                TEXT PRIMARY KEY,
    network_id        TEXT NOT NULL REFERENCES net_networks (id),
    project_id        TEXT NOT NULL,
    name              TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    ip_version        INTEGER NOT NULL,
    cidr              TEXT NOT NULL,
    gateway_ip        TEXT NOT NULL DEFAULT '',
    enable_dhcp       INTEGER NOT NULL DEFAULT 1,
    ipv6_ra_mode      TEXT NOT NULL DEFAULT '',
    ipv6_address_mode TEXT NOT NULL DEFAULT '',
    allocation_pools  TEXT NOT NULL DEFAULT '[]',
    dns_nameservers   TEXT NOT NULL DEFAULT '[]',
    host_routes       TEXT NOT NULL DEFAULT '[]',
    -- The address IPAM handed out last: the search for a free one starts
    -- after it, so allocation stays cheap however full the subnet is.
    ipam_last         TEXT NOT NULL DEFAULT '',
    revision_number   INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX net_subnets_network ON net_subnets (network_id);
CREATE INDEX net_subnets_project ON net_subnets (project_id);

CREATE TABLE net_ports (
    id                    TEXT PRIMARY KEY,
    network_id            TEXT NOT NULL REFERENCES net_networks (id),
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL DEFAULT '',
    description           TEXT NOT NULL DEFAULT '',
    mac_address           TEXT NOT NULL,
    admin_state_up        INTEGER NOT NULL DEFAULT 1,
    status                TEXT NOT NULL,
    device_id             TEXT NOT NULL DEFAULT '',
    device_owner          TEXT NOT NULL DEFAULT '',
    port_security_enabled INTEGER NOT NULL DEFAULT 1,
    binding_host_id       TEXT NOT NULL DEFAULT '',
    binding_vnic_type     TEXT NOT NULL DEFAULT 'normal',
    binding_profile       TEXT NOT NULL DEFAULT '{}',
    allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
    revision_number       INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX net_ports_project ON net_ports (project_id);
CREATE INDEX net_ports_device ON net_ports (device_id);

-- The primary key is what makes IPAM safe: one address, one port, per subnet.
CREATE TABLE net_ip_allocations (
    subnet_id  TEXT NOT NULL REFERENCES net_subnets (id),
    ip_address TEXT NOT NULL,
    port_id    TEXT NOT NULL REFERENCES net_ports (id) ON DELETE CASCADE,
    network_id TEXT NOT NULL,
    seq        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX net_ip_allocations_port ON net_ip_allocations (port_id);

CREATE TABLE net_security_groups (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    stateful        INTEGER NOT NULL DEFAULT 1,
    revision_number INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX net_security_groups_project ON net_security_groups (project_id);

-- At most one default group per project, made on first use.
CREATE TABLE net_default_security_groups (
    project_id        TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL UNIQUE REFERENCES net_security_groups (id) ON DELETE CASCADE
);

CREATE TABLE net_security_group_rules (
    id                TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL REFERENCES net_security_groups (id) ON DELETE CASCADE,
    project_id        TEXT NOT NULL,
    direction         TEXT NOT NULL,
    ethertype         TEXT NOT NULL,
    protocol          TEXT NOT NULL DEFAULT '',
    port_range_min    INTEGER,
    port_range_max    INTEGER,
    remote_ip_prefix  TEXT NOT NULL DEFAULT '',
    remote_group_id   TEXT REFERENCES net_security_groups (id) ON DELETE CASCADE,
    description       TEXT NOT NULL DEFAULT '',
    -- fingerprint is the rule's meaning in canonical form; the constraint
    -- rejects a duplicate however it is spelled.
    fingerprint       TEXT NOT NULL,
    revision_number   INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (security_group_id, fingerprint)
);
CREATE INDEX net_security_group_rules_project ON net_security_group_rules (project_id);
CREATE INDEX net_security_group_rules_remote ON net_security_group_rules (remote_group_id);

CREATE TABLE net_port_security_groups (
    port_id           TEXT NOT NULL REFERENCES net_ports (id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL REFERENCES net_security_groups (id),
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX net_port_security_groups_group ON net_port_security_groups (security_group_id);

CREATE TABLE net_routers (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    admin_state_up  INTEGER NOT NULL DEFAULT 1,
    status          TEXT NOT NULL,
    -- The gateway: '' / NULL when the router has none.
    gw_network_id   TEXT NOT NULL DEFAULT '',
    gw_port_id      TEXT REFERENCES net_ports (id),
    enable_snat     INTEGER NOT NULL DEFAULT 1,
    routes          TEXT NOT NULL DEFAULT '[]',
    revision_number INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX net_routers_project ON net_routers (project_id);
CREATE INDEX net_routers_gw_network ON net_routers (gw_network_id);

CREATE TABLE net_floatingips (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES net_networks (id),
    floating_ip_address TEXT NOT NULL,
    floating_port_id    TEXT NOT NULL REFERENCES net_ports (id),
    -- NULL while not associated.
    fixed_port_id       TEXT REFERENCES net_ports (id),
    fixed_ip_address    TEXT,
    router_id           TEXT REFERENCES net_routers (id),
    status              TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    revision_number     INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    -- One floating IP per fixed IP and external network.
    UNIQUE (floating_network_id, fixed_port_id, fixed_ip_address)
);
CREATE INDEX net_floatingips_project ON net_floatingips (project_id);
CREATE INDEX net_floatingips_fixed_port ON net_floatingips (fixed_port_id);
CREATE INDEX net_floatingips_router ON net_floatingips (router_id);

-- Per-project overrides of the default quotas; -1 is unlimited.
CREATE TABLE net_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
