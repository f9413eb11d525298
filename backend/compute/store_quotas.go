package compute

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

func (st *store) projectQuotas(ctx context.Context, q db.Querier, projectID string) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT resource, hard_limit FROM compute_quotas WHERE project_id = ?`, projectID)
	if err != nil {
		return nil, fmt.Errorf("read quotas: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var r string
		var v int64
		if err := rows.Scan(&r, &v); err != nil {
			return nil, fmt.Errorf("read quotas: %w", err)
		}
		out[r] = v
	}
	return out, rows.Err()
}

// projectUsage counts what projectID's live instances and server groups
// hold: instances, cores, ram (of the current flavor, or the larger one
// during a resize, as Nova counts), server groups and metadata items of
// its largest server.
func (st *store) projectUsage(ctx context.Context, q db.Querier, projectID string) (map[string]int64, error) {
	u := map[string]int64{}
	var inst, cores, ram int64
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0)
		FROM instances WHERE project_id = ? AND deleted = 0`, projectID).Scan(&inst, &cores, &ram)
	if err != nil {
		return nil, fmt.Errorf("count usage: %w", err)
	}
	u[QuotaInstances], u[QuotaCores], u[QuotaRAM] = inst, cores, ram
	var groups int64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_groups WHERE project_id = ?`, projectID).Scan(&groups); err != nil {
		return nil, fmt.Errorf("count server groups: %w", err)
	}
	u[QuotaServerGroups] = groups
	return u, nil
}

func (st *store) countKeypairs(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM keypairs WHERE user_id = ?`, userID).Scan(&n)
	return n, err
}

func (st *store) setProjectQuotas(ctx context.Context, projectID string, set map[string]int64) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		for k, v := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)
				ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, k, v); err != nil {
				return fmt.Errorf("set quota: %w", err)
			}
		}
		return nil
	})
}

func (st *store) deleteProjectQuotas(ctx context.Context, projectID string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM compute_quotas WHERE project_id = ?`, projectID)
		return err
	})
}
