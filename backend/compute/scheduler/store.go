package scheduler

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Allocation is what one consumer holds on one host.
type Allocation struct {
	ConsumerID   string
	InstanceUUID string
	HostID       string
	Resources
	CreatedAt time.Time
}

// store holds the scheduler's SQL over the allocations table. Every write
// is one transaction (BEGIN IMMEDIATE), so a claim's read of the host's
// usage and its insert are atomic against every other claim.
type store struct {
	db *db.DB
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hostUsage sums the allocations on one host.
func hostUsage(ctx context.Context, q querier, hostID string) (Usage, error) {
	var u Usage
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0),
		COALESCE(SUM(disk_gb), 0), COUNT(DISTINCT instance_uuid) FROM allocations WHERE host_id = ?`, hostID).
		Scan(&u.VCPUs, &u.MemoryMB, &u.DiskGB, &u.Instances)
	if err != nil {
		return Usage{}, fmt.Errorf("read usage of host %s: %w", hostID, err)
	}
	return u, nil
}

func fits(u Usage, add, limit Resources) bool {
	n := u.Resources.Add(add)
	return n.VCPUs <= limit.VCPUs && n.MemoryMB <= limit.MemoryMB && n.DiskGB <= limit.DiskGB
}

func insertAllocation(ctx context.Context, tx *sql.Tx, a Allocation, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO allocations (consumer_id, instance_uuid, host_id, vcpus, memory_mb, disk_gb, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ConsumerID, a.InstanceUUID, a.HostID, a.VCPUs, a.MemoryMB, a.DiskGB, db.FormatTime(now))
	if db.IsUniqueViolation(err) {
		return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Consumer %s already holds an allocation.", a.ConsumerID))
	}
	return err
}

// claim inserts a if the host's usage plus a stays within limit, and
// returns the usage after the transaction (with a when it was inserted).
func (st *store) claim(ctx context.Context, a Allocation, limit Resources, g *Group, now time.Time) (Usage, bool, error) {
	var u Usage
	var ok bool
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = hostUsage(ctx, tx, a.HostID); err != nil {
			return err
		}
		if !fits(u, a.Resources, limit) {
			return nil
		}
		if gok, err := groupFits(ctx, tx, g, a.HostID, a.InstanceUUID); err != nil || !gok {
			return err
		}
		if err := insertAllocation(ctx, tx, a, now); err != nil {
			return err
		}
		u.Resources = u.Resources.Add(a.Resources)
		u.Instances++
		ok = true
		return nil
	})
	return u, ok, err
}

// groupFits re-checks a hard server-group policy inside the claim
// transaction, against the allocations of the group's other members: two
// members scheduled at once cannot both take the same host under
// anti-affinity, nor two different hosts under affinity.
func groupFits(ctx context.Context, tx *sql.Tx, g *Group, hostID, instanceUUID string) (bool, error) {
	if g == nil || g.ID == "" {
		return true, nil
	}
	switch g.Policy {
	case PolicyAntiAffinity:
		var n int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT a.instance_uuid) FROM allocations a
			JOIN server_group_members m ON m.instance_uuid = a.instance_uuid
			WHERE m.group_id = ? AND a.host_id = ? AND a.instance_uuid <> ?`, g.ID, hostID, instanceUUID).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("check anti-affinity: %w", err)
		}
		max := g.MaxServerPerHost
		if max <= 0 {
			max = 1
		}
		return n < max, nil
	case PolicyAffinity:
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.host_id FROM allocations a
			JOIN server_group_members m ON m.instance_uuid = a.instance_uuid
			WHERE m.group_id = ? AND a.instance_uuid <> ?`, g.ID, instanceUUID)
		if err != nil {
			return false, fmt.Errorf("check affinity: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				return false, err
			}
			if h != hostID {
				return false, nil
			}
		}
		return true, rows.Err()
	}
	return true, nil
}

// claimResize renames the instance's allocation on hostID to its old
// consumer and inserts res for the instance, if both fit.
func (st *store) claimResize(ctx context.Context, hostID, instanceUUID string, res, limit Resources, now time.Time) (Usage, bool, error) {
	var u Usage
	var ok bool
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = hostUsage(ctx, tx, hostID); err != nil {
			return err
		}
		if !fits(u, res, limit) {
			return nil
		}
		r, err := tx.ExecContext(ctx, `UPDATE allocations SET consumer_id = ? WHERE consumer_id = ? AND host_id = ?`,
			OldConsumer(instanceUUID), instanceUUID, hostID)
		if err != nil {
			return fmt.Errorf("move allocation of %s: %w", instanceUUID, err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return fault.Conflictf("Instance %s holds no allocation on its host.", instanceUUID)
		}
		a := Allocation{ConsumerID: instanceUUID, InstanceUUID: instanceUUID, HostID: hostID, Resources: res}
		if err := insertAllocation(ctx, tx, a, now); err != nil {
			return err
		}
		u.Resources = u.Resources.Add(res)
		ok = true
		return nil
	})
	return u, ok, err
}

func deleteWhere(ctx context.Context, tx *sql.Tx, where string, arg string) ([]Allocation, error) {
	rows, err := tx.QueryContext(ctx, `SELECT consumer_id, instance_uuid, host_id, vcpus, memory_mb, disk_gb, created_at
		FROM allocations WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("read allocations: %w", err)
	}
	as, err := scanAllocations(rows)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM allocations WHERE `+where, arg); err != nil {
		return nil, fmt.Errorf("delete allocations: %w", err)
	}
	return as, nil
}

// ReleaseTx deletes every allocation of instanceUUID inside the caller's
// transaction, so compute can free resources in the same transaction that
// ends the instance. It returns what it freed, for Forget after commit.
func ReleaseTx(ctx context.Context, tx *sql.Tx, instanceUUID string) ([]Allocation, error) {
	return deleteWhere(ctx, tx, "instance_uuid = ?", instanceUUID)
}

func (st *store) release(ctx context.Context, instanceUUID string) ([]Allocation, error) {
	var out []Allocation
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = ReleaseTx(ctx, tx, instanceUUID)
		return err
	})
	return out, err
}

func (st *store) releaseConsumer(ctx context.Context, consumerID string) ([]Allocation, error) {
	var out []Allocation
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = ReleaseConsumerTx(ctx, tx, consumerID)
		return err
	})
	return out, err
}

func (st *store) revertResize(ctx context.Context, instanceUUID string) ([]Allocation, error) {
	var out []Allocation
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = RevertResizeTx(ctx, tx, instanceUUID)
		return err
	})
	return out, err
}

func (st *store) usage(ctx context.Context) (map[string]Usage, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT host_id, SUM(vcpus), SUM(memory_mb), SUM(disk_gb),
		COUNT(DISTINCT instance_uuid) FROM allocations GROUP BY host_id`)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	defer rows.Close()
	out := map[string]Usage{}
	for rows.Next() {
		var id string
		var u Usage
		if err := rows.Scan(&id, &u.VCPUs, &u.MemoryMB, &u.DiskGB, &u.Instances); err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		out[id] = u
	}
	return out, rows.Err()
}

func (st *store) allocations(ctx context.Context) ([]Allocation, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT consumer_id, instance_uuid, host_id, vcpus, memory_mb, disk_gb, created_at
		FROM allocations ORDER BY host_id, consumer_id`)
	if err != nil {
		return nil, fmt.Errorf("read allocations: %w", err)
	}
	return scanAllocations(rows)
}

func scanAllocations(rows *sql.Rows) ([]Allocation, error) {
	defer rows.Close()
	var out []Allocation
	for rows.Next() {
		var a Allocation
		var created string
		if err := rows.Scan(&a.ConsumerID, &a.InstanceUUID, &a.HostID, &a.VCPUs, &a.MemoryMB, &a.DiskGB, &created); err != nil {
			return nil, fmt.Errorf("read allocations: %w", err)
		}
		a.CreatedAt, _ = db.ParseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ReleaseConsumerTx deletes consumerID's allocation inside the caller's
// transaction (a resize's old flavor, on confirm) and returns it.
func ReleaseConsumerTx(ctx context.Context, tx *sql.Tx, consumerID string) ([]Allocation, error) {
	return deleteWhere(ctx, tx, "consumer_id = ?", consumerID)
}

// RevertResizeTx drops instanceUUID's new allocation and gives back its
// old one inside the caller's transaction; without an old allocation it
// does nothing. The freed allocations are returned for Forget.
func RevertResizeTx(ctx context.Context, tx *sql.Tx, instanceUUID string) ([]Allocation, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM allocations WHERE consumer_id = ?`,
		OldConsumer(instanceUUID)).Scan(&n); err != nil {
		return nil, fmt.Errorf("read old allocation: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	out, err := deleteWhere(ctx, tx, "consumer_id = ?", instanceUUID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE allocations SET consumer_id = ? WHERE consumer_id = ?`,
		instanceUUID, OldConsumer(instanceUUID)); err != nil {
		return nil, fmt.Errorf("restore old allocation: %w", err)
	}
	// The instance keeps an allocation, so the freed one must not lower
	// the cached instance count.
	for i := range out {
		out[i].InstanceUUID = ""
	}
	return out, nil
}
