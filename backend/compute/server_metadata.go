package compute

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ServerMetadata returns server id's metadata. Kinds: NotFound, Forbidden.
func (s *Service) ServerMetadata(ctx context.Context, id string) (map[string]string, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:server-metadata:index")
	if err != nil {
		return nil, err
	}
	return srv.Metadata, nil
}

// ServerMetadataItem returns one metadata item of server id. Kinds:
// NotFound, Forbidden.
func (s *Service) ServerMetadataItem(ctx context.Context, id, key string) (string, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:server-metadata:show")
	if err != nil {
		return "", err
	}
	v, ok := srv.Metadata[key]
	if !ok {
		return "", fault.NotFoundf("Metadata item was not found")
	}
	return v, nil
}

// UpdateServerMetadata merges md into server id's metadata, or replaces it
// when replace is set, and returns the result. Kinds: NotFound, Forbidden,
// Invalid, OverQuota, Conflict (locked, or a task is running).
func (s *Service) UpdateServerMetadata(ctx context.Context, id string, md map[string]string, replace bool) (map[string]string, error) {
	action := "os_compute_api:server-metadata:create"
	if replace {
		action = "os_compute_api:server-metadata:update_all"
	}
	srv, c, err := s.serverFor(ctx, id, action)
	if err != nil {
		return nil, err
	}
	if err := checkLocked(srv, c); err != nil {
		return nil, err
	}
	lim, err := s.quotaLimit(ctx, srv.ProjectID, QuotaMetadataItems)
	if err != nil {
		return nil, err
	}
	merged := map[string]string{}
	if !replace {
		for k, v := range srv.Metadata {
			merged[k] = v
		}
	}
	for k, v := range md {
		merged[k] = v
	}
	if err := checkMetadata(merged, lim); err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := replaceMetadata(ctx, tx, srv.ID, merged); err != nil {
			return err
		}
		_, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*"}, s.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return merged, nil
}

// SetServerMetadataItem sets one metadata item of server id. Kinds:
// NotFound, Forbidden, Invalid, OverQuota, Conflict.
func (s *Service) SetServerMetadataItem(ctx context.Context, id, key, value string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:server-metadata:update")
	if err != nil {
		return err
	}
	if err := checkLocked(srv, c); err != nil {
		return err
	}
	lim, err := s.quotaLimit(ctx, srv.ProjectID, QuotaMetadataItems)
	if err != nil {
		return err
	}
	merged := map[string]string{key: value}
	for k, v := range srv.Metadata {
		if k != key {
			merged[k] = v
		}
	}
	if err := checkMetadata(merged, lim); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instance_metadata (instance_uuid, key, value) VALUES (?, ?, ?)
			ON CONFLICT (instance_uuid, key) DO UPDATE SET value = excluded.value`, srv.ID, key, value); err != nil {
			return fmt.Errorf("set metadata: %w", err)
		}
		_, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*"}, s.now())
		return err
	})
}

// DeleteServerMetadataItem deletes one metadata item of server id. Kinds:
// NotFound, Forbidden, Conflict.
func (s *Service) DeleteServerMetadataItem(ctx context.Context, id, key string) error {
	srv, c, err := s.serverFor(ctx, id, "os_compute_api:server-metadata:delete")
	if err != nil {
		return err
	}
	if err := checkLocked(srv, c); err != nil {
		return err
	}
	if _, ok := srv.Metadata[key]; !ok {
		return fault.NotFoundf("Metadata item was not found")
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM instance_metadata WHERE instance_uuid = ? AND key = ?`, srv.ID, key); err != nil {
			return err
		}
		_, err := changeInstance(ctx, tx, srv.ID, instanceChange{fromTask: "*"}, s.now())
		return err
	})
}

func replaceMetadata(ctx context.Context, tx *sql.Tx, id string, md map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM instance_metadata WHERE instance_uuid = ?`, id); err != nil {
		return fmt.Errorf("replace metadata: %w", err)
	}
	for k, v := range md {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instance_metadata (instance_uuid, key, value) VALUES (?, ?, ?)`, id, k, v); err != nil {
			return fmt.Errorf("replace metadata: %w", err)
		}
	}
	return nil
}
