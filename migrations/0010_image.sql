-- Image service (Glance v2). Portable SQL: TEXT UUID keys (with dashes, as
-- Glance), timestamps as fixed-width UTC RFC 3339 text so they sort as
-- text, booleans as INTEGER 0/1. Text attributes Glance shows as null when
-- unset are stored as ''.

-- image_content is one stored blob, content-addressed by the SHA-512 of its
-- bytes (the os_hash_value Glance reports), kept under
-- <data>/images/sha512/<hash>. Several images may share one; the file is
-- removed when the last image referencing it is deleted.
CREATE TABLE image_content (
    hash       TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- images keeps a deleted image as a tombstone (status 'deleted', no
-- content, properties, tags or members) so its ID is never reused.
CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    owner            TEXT NOT NULL DEFAULT '',
    protected        INTEGER NOT NULL DEFAULT 0,
    os_hidden        INTEGER NOT NULL DEFAULT 0,
    disk_format      TEXT NOT NULL DEFAULT '',
    container_format TEXT NOT NULL DEFAULT '',
    min_disk         INTEGER NOT NULL DEFAULT 0,
    min_ram          INTEGER NOT NULL DEFAULT 0,
    size             INTEGER,
    virtual_size     INTEGER,
    checksum         TEXT NOT NULL DEFAULT '',
    os_hash_algo     TEXT NOT NULL DEFAULT '',
    os_hash_value    TEXT NOT NULL DEFAULT '',
    content_hash     TEXT REFERENCES image_content(hash),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);
CREATE INDEX images_owner ON images(owner, status);
CREATE INDEX images_visibility ON images(visibility, status);
CREATE INDEX images_content ON images(content_hash);
CREATE INDEX images_created ON images(created_at, id);
CREATE INDEX images_name ON images(name);

-- image_properties are Glance's custom (additional) properties: string
-- values shown at the top level of the image.
CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags(tag);

-- image_members shares an image (visibility 'shared') with a project; the
-- member accepts or rejects it.
CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    member     TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member ON image_members(member, status);
