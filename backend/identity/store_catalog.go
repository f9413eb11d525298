package identity

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ---- regions ----

func scanRegion(r db.Scanner) (Region, error) {
	var x Region
	var parent sql.NullString
	err := r.Scan(&x.ID, &x.Description, &parent)
	x.ParentRegionID = parent.String
	return x, err
}

func getRegion(ctx context.Context, q db.Querier, id string) (*Region, error) {
	r, err := scanRegion(q.QueryRowContext(ctx, `SELECT id, description, parent_region_id FROM regions WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find region: %s.", id))
	}
	return &r, nil
}

func (st *store) region(ctx context.Context, id string) (*Region, error) {
	return getRegion(ctx, st.db, id)
}

func (st *store) listRegions(ctx context.Context, parentID string) ([]Region, error) {
	q := `SELECT id, description, parent_region_id FROM regions`
	var args []any
	if parentID != "" {
		q, args = q+` WHERE parent_region_id = ?`, append(args, parentID)
	}
	rows, err := st.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	rs, _, err := collect(rows, 0, scanRegion)
	if rs == nil {
		rs = []Region{}
	}
	return rs, err
}

func insertRegion(ctx context.Context, q db.Querier, r *Region, now time.Time) error {
	if r.ParentRegionID != "" {
		if _, err := getRegion(ctx, q, r.ParentRegionID); err != nil {
			return err
		}
	}
	_, err := q.ExecContext(ctx, `INSERT INTO regions (id, description, parent_region_id, created_at) VALUES (?, ?, ?, ?)`,
		r.ID, r.Description, nullStr(r.ParentRegionID), db.FormatTime(now))
	if db.IsUniqueViolation(err) {
		return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Conflict occurred attempting to store region - Duplicate ID, %s.", r.ID))
	}
	return err
}

func (st *store) createRegion(ctx context.Context, r *Region, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertRegion(ctx, tx, r, now) })
}

func (st *store) updateRegion(ctx context.Context, id string, u RegionUpdate) (*Region, error) {
	var r *Region
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getRegion(ctx, tx, id); err != nil {
			return err
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		if u.ParentRegionID != nil {
			r.ParentRegionID = *u.ParentRegionID
			// Walk up from the new parent: meeting id would make a cycle.
			for cur, n := r.ParentRegionID, 0; cur != ""; n++ {
				if cur == id || n > 64 {
					return fault.Invalidf("Region %s cannot be its own ancestor.", id)
				}
				p, err := getRegion(ctx, tx, cur)
				if err != nil {
					return err
				}
				cur = p.ParentRegionID
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE regions SET description = ?, parent_region_id = ? WHERE id = ?`,
			r.Description, nullStr(r.ParentRegionID), id)
		return err
	})
	return r, err
}

func (st *store) deleteRegion(ctx context.Context, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getRegion(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM regions WHERE parent_region_id = ?) +
			(SELECT COUNT(*) FROM endpoints WHERE region_id = ?)`, id, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fault.Conflictf("Cannot delete region %s: it has child regions or endpoints.", id)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM regions WHERE id = ?`, id)
		return err
	})
}

// ---- catalog services ----

const serviceCols = `id, type, name, description, enabled`

func scanService(r db.Scanner) (CatalogService, error) {
	var s CatalogService
	err := r.Scan(&s.ID, &s.Type, &s.Name, &s.Description, &s.Enabled)
	return s, err
}

func getService(ctx context.Context, q db.Querier, id string) (*CatalogService, error) {
	s, err := scanService(q.QueryRowContext(ctx, `SELECT `+serviceCols+` FROM services WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find service: %s.", id))
	}
	return &s, nil
}

func (st *store) service(ctx context.Context, id string) (*CatalogService, error) {
	return getService(ctx, st.db, id)
}

func listServices(ctx context.Context, q db.Querier, typ string) ([]CatalogService, error) {
	query := `SELECT ` + serviceCols + ` FROM services`
	var args []any
	if typ != "" {
		query, args = query+` WHERE type = ?`, append(args, typ)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	ss, _, err := collect(rows, 0, scanService)
	if ss == nil {
		ss = []CatalogService{}
	}
	return ss, err
}

func (st *store) listServices(ctx context.Context, typ string) ([]CatalogService, error) {
	return listServices(ctx, st.db, typ)
}

func insertService(ctx context.Context, q db.Querier, s *CatalogService, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO services (id, type, name, description, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, s.Type, s.Name, s.Description, db.Bool(s.Enabled), db.FormatTime(now))
	return err
}

func (st *store) createService(ctx context.Context, s *CatalogService, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertService(ctx, tx, s, now) })
}

func (st *store) updateService(ctx context.Context, id string, u CatalogServiceUpdate) (*CatalogService, error) {
	var s *CatalogService
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if s, err = getService(ctx, tx, id); err != nil {
			return err
		}
		if u.Type != nil {
			s.Type = *u.Type
		}
		if u.Name != nil {
			s.Name = *u.Name
		}
		if u.Description != nil {
			s.Description = *u.Description
		}
		if u.Enabled != nil {
			s.Enabled = *u.Enabled
		}
		_, err = tx.ExecContext(ctx, `UPDATE services SET type = ?, name = ?, description = ?, enabled = ? WHERE id = ?`,
			s.Type, s.Name, s.Description, db.Bool(s.Enabled), id)
		return err
	})
	return s, err
}

func (st *store) deleteService(ctx context.Context, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getService(ctx, tx, id); err != nil {
			return err
		}
		// Its endpoints go with it (ON DELETE CASCADE), as in Keystone.
		_, err := tx.ExecContext(ctx, `DELETE FROM services WHERE id = ?`, id)
		return err
	})
}

// ---- endpoints ----

const endpointCols = `id, service_id, interface, region_id, url, enabled`

func scanEndpoint(r db.Scanner) (Endpoint, error) {
	var e Endpoint
	var region sql.NullString
	err := r.Scan(&e.ID, &e.ServiceID, &e.Interface, &region, &e.URL, &e.Enabled)
	e.RegionID = region.String
	return e, err
}

func getEndpoint(ctx context.Context, q db.Querier, id string) (*Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find endpoint: %s.", id))
	}
	return &e, nil
}

func (st *store) endpoint(ctx context.Context, id string) (*Endpoint, error) {
	return getEndpoint(ctx, st.db, id)
}

func listEndpoints(ctx context.Context, q db.Querier, f EndpointFilter) ([]Endpoint, error) {
	var where []string
	var args []any
	if f.ServiceID != "" {
		where, args = append(where, "service_id = ?"), append(args, f.ServiceID)
	}
	if f.Interface != "" {
		where, args = append(where, "interface = ?"), append(args, f.Interface)
	}
	if f.RegionID != "" {
		where, args = append(where, "region_id = ?"), append(args, f.RegionID)
	}
	query := `SELECT ` + endpointCols + ` FROM endpoints`
	if len(where) > 0 {
		query += " WHERE " + joinAnd(where)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	es, _, err := collect(rows, 0, scanEndpoint)
	if es == nil {
		es = []Endpoint{}
	}
	return es, err
}

func (st *store) listEndpoints(ctx context.Context, f EndpointFilter) ([]Endpoint, error) {
	return listEndpoints(ctx, st.db, f)
}

func insertEndpoint(ctx context.Context, q db.Querier, e *Endpoint, now time.Time) error {
	if _, err := getService(ctx, q, e.ServiceID); err != nil {
		return err
	}
	if e.RegionID != "" {
		if _, err := getRegion(ctx, q, e.RegionID); err != nil {
			return err
		}
	}
	_, err := q.ExecContext(ctx, `INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.ServiceID, e.Interface, nullStr(e.RegionID), e.URL, db.Bool(e.Enabled),
		db.FormatTime(now))
	return err
}

func (st *store) createEndpoint(ctx context.Context, e *Endpoint, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertEndpoint(ctx, tx, e, now) })
}

func updateEndpointRow(ctx context.Context, q db.Querier, e *Endpoint) error {
	_, err := q.ExecContext(ctx, `UPDATE endpoints SET service_id = ?, interface = ?, region_id = ?, url = ?, enabled = ? WHERE id = ?`,
		e.ServiceID, e.Interface, nullStr(e.RegionID), e.URL, db.Bool(e.Enabled), e.ID)
	return err
}

func (st *store) updateEndpoint(ctx context.Context, id string, u EndpointUpdate) (*Endpoint, error) {
	var e *Endpoint
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if e, err = getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		if u.ServiceID != nil {
			if _, err := getService(ctx, tx, *u.ServiceID); err != nil {
				return err
			}
			e.ServiceID = *u.ServiceID
		}
		if u.Interface != nil {
			e.Interface = *u.Interface
		}
		if u.RegionID != nil {
			if *u.RegionID != "" {
				if _, err := getRegion(ctx, tx, *u.RegionID); err != nil {
					return err
				}
			}
			e.RegionID = *u.RegionID
		}
		if u.URL != nil {
			e.URL = *u.URL
		}
		if u.Enabled != nil {
			e.Enabled = *u.Enabled
		}
		return updateEndpointRow(ctx, tx, e)
	})
	return e, err
}

func (st *store) deleteEndpoint(ctx context.Context, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("Could not find endpoint: %s.", id)
		}
		return nil
	})
}

// catalog returns the enabled services with their enabled endpoints.
func (st *store) catalog(ctx context.Context) ([]CatalogEntry, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT s.id, s.type, s.name, s.description, s.enabled,
		e.id, e.service_id, e.interface, e.region_id, e.url, e.enabled
		FROM services s JOIN endpoints e ON e.service_id = s.id
		WHERE s.enabled = 1 AND e.enabled = 1 ORDER BY s.type, s.id, e.interface, e.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CatalogEntry
	for rows.Next() {
		var s CatalogService
		var e Endpoint
		var region sql.NullString
		if err := rows.Scan(&s.ID, &s.Type, &s.Name, &s.Description, &s.Enabled,
			&e.ID, &e.ServiceID, &e.Interface, &region, &e.URL, &e.Enabled); err != nil {
			return nil, err
		}
		e.RegionID = region.String
		if len(out) == 0 || out[len(out)-1].Service.ID != s.ID {
			out = append(out, CatalogEntry{Service: s})
		}
		out[len(out)-1].Endpoints = append(out[len(out)-1].Endpoints, e)
	}
	return out, rows.Err()
}
