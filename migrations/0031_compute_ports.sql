-- Ports of compute instances: which ports an instance uses, and whether
-- compute created them (deleted with the instance) or the user brought them
-- (only unbound when the instance goes).
CREATE TABLE compute_instance_ports (
    instance_uuid      TEXT NOT NULL,
    port_id            TEXT NOT NULL,
    created_by_compute INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_uuid, port_id)
);
CREATE INDEX compute_instance_ports_port ON compute_instance_ports (port_id);
