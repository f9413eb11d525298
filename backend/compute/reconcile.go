package compute

import (
	"context"
	"database/sql"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
)

// reconcileLoop runs Reconcile every ReconcileInterval until Close.
func (s *Service) reconcileLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Reconcile(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Error("compute reconcile", "err", err)
			}
		}
	}
}

// Reconcile sweeps what agents and crashed controllers leave behind:
// operations past their deadline fail (a build turns ERROR and releases
// its claim), builds that never got an operation (the controller died
// while scheduling) turn ERROR after BuildTimeout, deletions that never
// finished complete, and allocations of deleted instances are released.
// It runs on a timer; tests call it directly.
func (s *Service) Reconcile(ctx context.Context) error {
	now := s.now()
	ops, err := s.st.expiredOps(ctx, now)
	if err != nil {
		return err
	}
	for _, op := range ops {
		msg := "Timed out waiting for the compute host to finish the operation."
		if op.Kind == opSpawn {
			msg = "Build of instance " + op.InstanceUUID + " aborted: timed out waiting for the compute host."
		}
		if err := s.completeOp(ctx, op.HostID, agentapi.Operation{ID: op.ID, UUID: op.InstanceUUID, Kind: op.Kind,
			Status: agentapi.OpFailed, Error: msg}); err != nil {
			return err
		}
	}
	stuck, err := s.st.stuckInstances(ctx, now.Add(-s.cfg.BuildTimeout), now.Add(-s.cfg.OpTimeout))
	if err != nil {
		return err
	}
	for _, srv := range stuck {
		if srv.TaskState == TaskDeleting {
			s.finishDeleteTx(ctx, srv.ID, "")
			continue
		}
		actionID, _ := latestAction(ctx, s.st.db, srv.ID, ActionCreate)
		var ev string
		_ = s.db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			ev, err = startEvent(ctx, tx, actionID, eventBuild, srv.Node, srv.HostID, now)
			return err
		})
		s.failBuild(ctx, &srv, ev, "", Fault{Code: 500, Created: now,
			Message: "Build of instance " + srv.ID + " aborted: the build did not finish in time."})
	}
	var freed []scheduler.Allocation
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		leaked, err := stringsOf(ctx, tx, `SELECT DISTINCT a.instance_uuid FROM allocations a
			LEFT JOIN instances i ON i.uuid = a.instance_uuid WHERE i.uuid IS NULL OR i.deleted = 1`)
		if err != nil {
			return err
		}
		for _, id := range leaked {
			f, err := scheduler.ReleaseTx(ctx, tx, id)
			if err != nil {
				return err
			}
			freed = append(freed, f...)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM console_tokens WHERE expires_at < ?`, fmtTime(now))
		return err
	})
	if err != nil {
		return err
	}
	s.sched.Forget(freed)
	return nil
}

// stuckInstances lists builds without a pending operation created before
// buildBefore, and deletions started before deleteBefore.
func (st *store) stuckInstances(ctx context.Context, buildBefore, deleteBefore time.Time) ([]Server, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+serverCols+` FROM instances i WHERE i.deleted = 0 AND (
		(i.vm_state = ? AND i.created_at < ? AND NOT EXISTS (SELECT 1 FROM instance_operations o WHERE o.instance_uuid = i.uuid))
		OR (i.task_state = ? AND i.updated_at < ?))`, VMBuilding, fmtTime(buildBefore), TaskDeleting, fmtTime(deleteBefore))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Server
	for rows.Next() {
		srv, err := scanServer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *srv)
	}
	return out, rows.Err()
}
