package compute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func (st *store) createAggregate(ctx context.Context, a *Aggregate) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		id, err := nextSeq(ctx, tx, "aggregates", "id")
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO aggregates (id, uuid, name, created_at) VALUES (?, ?, ?, ?)`,
			id, a.UUID, a.Name, fmtTime(a.CreatedAt))
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Aggregate %s already exists.", a.Name))
		}
		if err != nil {
			return fmt.Errorf("insert aggregate: %w", err)
		}
		a.ID = id
		for k, v := range a.Metadata {
			if _, err := tx.ExecContext(ctx, `INSERT INTO aggregate_metadata (aggregate_id, key, value) VALUES (?, ?, ?)`, id, k, v); err != nil {
				return fmt.Errorf("insert aggregate metadata: %w", err)
			}
		}
		return nil
	})
}

func scanAggregate(sc db.Scanner) (*Aggregate, error) {
	var a Aggregate
	var created string
	var updated sql.NullString
	if err := sc.Scan(&a.ID, &a.UUID, &a.Name, &created, &updated); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = parseTime(created), timePtr(updated)
	a.Metadata = map[string]string{}
	a.Hosts = []string{}
	return &a, nil
}

func (st *store) getAggregate(ctx context.Context, q db.Querier, id int64) (*Aggregate, error) {
	a, err := scanAggregate(q.QueryRowContext(ctx, `SELECT id, uuid, name, created_at, updated_at FROM aggregates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errAggregateNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read aggregate: %w", err)
	}
	if a.Metadata, err = keyValues(ctx, q, `SELECT key, value FROM aggregate_metadata WHERE aggregate_id = ?`, id); err != nil {
		return nil, err
	}
	hosts, err := stringsOf(ctx, q, `SELECT host FROM aggregate_hosts WHERE aggregate_id = ? ORDER BY host`, id)
	if err != nil {
		return nil, err
	}
	if hosts != nil {
		a.Hosts = hosts
	}
	return a, nil
}

func (st *store) listAggregates(ctx context.Context) ([]Aggregate, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT id, uuid, name, created_at, updated_at FROM aggregates ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list aggregates: %w", err)
	}
	var out []Aggregate
	idx := map[int64]int{}
	for rows.Next() {
		a, err := scanAggregate(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		idx[a.ID] = len(out)
		out = append(out, *a)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	md, err := st.db.QueryContext(ctx, `SELECT aggregate_id, key, value FROM aggregate_metadata`)
	if err != nil {
		return nil, err
	}
	for md.Next() {
		var id int64
		var k, v string
		if err := md.Scan(&id, &k, &v); err != nil {
			md.Close()
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].Metadata[k] = v
		}
	}
	md.Close()
	hs, err := st.db.QueryContext(ctx, `SELECT aggregate_id, host FROM aggregate_hosts ORDER BY host`)
	if err != nil {
		return nil, err
	}
	defer hs.Close()
	for hs.Next() {
		var id int64
		var h string
		if err := hs.Scan(&id, &h); err != nil {
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].Hosts = append(out[i].Hosts, h)
		}
	}
	return out, hs.Err()
}

// updateAggregate renames and changes metadata (nil values delete keys).
// A zone change is refused when a host of the aggregate would end up in
// two zones.
func (st *store) updateAggregate(ctx context.Context, id int64, name *string, md map[string]*string, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := st.getAggregate(ctx, tx, id)
		if err != nil {
			return err
		}
		if name != nil {
			_, err := tx.ExecContext(ctx, `UPDATE aggregates SET name = ? WHERE id = ?`, *name, id)
			if db.IsUniqueViolation(err) {
				return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Aggregate %s already exists.", *name))
			}
			if err != nil {
				return err
			}
		}
		if v, ok := md[azKey]; ok && v != nil && len(a.Hosts) > 0 {
			for _, h := range a.Hosts {
				if z, err := otherZones(ctx, tx, h, id); err != nil {
					return err
				} else if len(z) > 0 && (len(z) > 1 || z[0] != *v) {
					return fault.Invalidf("Cannot update aggregate %d. Reason: One or more hosts already in availability zone(s) %v.", id, z)
				}
			}
		}
		for k, v := range md {
			if v == nil {
				if _, err := tx.ExecContext(ctx, `DELETE FROM aggregate_metadata WHERE aggregate_id = ? AND key = ?`, id, k); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO aggregate_metadata (aggregate_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (aggregate_id, key) DO UPDATE SET value = excluded.value`, id, k, *v); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE aggregates SET updated_at = ? WHERE id = ?`, fmtTime(now), id)
		return err
	})
}

// otherZones lists the zones host is in through aggregates other than id.
func otherZones(ctx context.Context, q db.Querier, host string, id int64) ([]string, error) {
	return stringsOf(ctx, q, `SELECT DISTINCT m.value FROM aggregate_hosts h JOIN aggregate_metadata m
		ON m.aggregate_id = h.aggregate_id AND m.key = 'availability_zone'
		WHERE h.host = ? AND h.aggregate_id <> ? ORDER BY m.value`, host, id)
}

func (st *store) deleteAggregate(ctx context.Context, id int64) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := st.getAggregate(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(a.Hosts) > 0 {
			return fault.Invalidf("Cannot perform action 'delete' on aggregate %d. Reason: Host aggregate is not empty.", id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM aggregates WHERE id = ?`, id)
		return err
	})
}

func (st *store) addAggregateHost(ctx context.Context, id int64, host string, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := st.getAggregate(ctx, tx, id)
		if err != nil {
			return err
		}
		if z := a.AvailabilityZone(); z != "" {
			others, err := otherZones(ctx, tx, host, id)
			if err != nil {
				return err
			}
			if len(others) > 0 && (len(others) > 1 || others[0] != z) {
				return aggregateZoneConflict(id, others)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO aggregate_hosts (aggregate_id, host) VALUES (?, ?)`, id, host)
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, aggregateHostConflict(id, host).Error())
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE aggregates SET updated_at = ? WHERE id = ?`, fmtTime(now), id)
		return err
	})
}

func (st *store) removeAggregateHost(ctx context.Context, id int64, host string, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := st.getAggregate(ctx, tx, id); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM aggregate_hosts WHERE aggregate_id = ? AND host = ?`, id, host)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fault.NotFoundf("Aggregate %d has no host %s.", id, host)
		}
		_, err = tx.ExecContext(ctx, `UPDATE aggregates SET updated_at = ? WHERE id = ?`, fmtTime(now), id)
		return err
	})
}
