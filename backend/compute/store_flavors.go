package compute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const flavorCols = `id, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, disabled, description, created_at`

func scanFlavor(sc db.Scanner) (*Flavor, error) {
	var f Flavor
	var pub, dis int
	var desc sql.NullString
	var created string
	if err := sc.Scan(&f.ID, &f.Name, &f.VCPUs, &f.MemoryMB, &f.RootGB, &f.EphemeralGB, &f.SwapMB, &f.RXTXFactor,
		&pub, &dis, &desc, &created); err != nil {
		return nil, err
	}
	f.IsPublic, f.Disabled, f.Description, f.CreatedAt = pub == 1, dis == 1, strPtr(desc), parseTime(created)
	return &f, nil
}

func insertFlavor(ctx context.Context, tx *sql.Tx, f *Flavor) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM flavors WHERE name = ?`, f.Name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fault.Conflictf("Flavor with name %s already exists.", f.Name)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO flavors (`+flavorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.Name, f.VCPUs, f.MemoryMB, f.RootGB, f.EphemeralGB, f.SwapMB, f.RXTXFactor, db.Bool(f.IsPublic), db.Bool(f.Disabled),
		nullStrPtr(f.Description), fmtTime(f.CreatedAt))
	if db.IsUniqueViolation(err) {
		return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Flavor with ID %s already exists.", f.ID))
	}
	if err != nil {
		return fmt.Errorf("insert flavor: %w", err)
	}
	for k, v := range f.ExtraSpecs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO flavor_extra_specs (flavor_id, key, value) VALUES (?, ?, ?)`, f.ID, k, v); err != nil {
			return fmt.Errorf("insert extra spec: %w", err)
		}
	}
	return nil
}

func (st *store) createFlavor(ctx context.Context, f *Flavor) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertFlavor(ctx, tx, f) })
}

// ensureFlavor creates f unless a flavor of that name exists; when f's ID
// is taken by another name it gets a UUID.
func (st *store) ensureFlavor(ctx context.Context, f *Flavor) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM flavors WHERE name = ?`, f.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM flavors WHERE id = ?`, f.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			f.ID = newUUID()
		}
		return insertFlavor(ctx, tx, f)
	})
}

func (st *store) getFlavor(ctx context.Context, q db.Querier, id string) (*Flavor, error) {
	f, err := scanFlavor(q.QueryRowContext(ctx, `SELECT `+flavorCols+` FROM flavors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.Wrap(fault.NotFound, err, fmt.Sprintf("Flavor %s could not be found.", id))
	}
	if err != nil {
		return nil, fmt.Errorf("read flavor: %w", err)
	}
	if f.ExtraSpecs, err = keyValues(ctx, q, `SELECT key, value FROM flavor_extra_specs WHERE flavor_id = ?`, id); err != nil {
		return nil, fmt.Errorf("read extra specs: %w", err)
	}
	return f, nil
}

func (st *store) listFlavors(ctx context.Context) ([]Flavor, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+flavorCols+` FROM flavors ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list flavors: %w", err)
	}
	var out []Flavor
	idx := map[string]int{}
	for rows.Next() {
		f, err := scanFlavor(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list flavors: %w", err)
		}
		f.ExtraSpecs = map[string]string{}
		idx[f.ID] = len(out)
		out = append(out, *f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	specs, err := st.db.QueryContext(ctx, `SELECT flavor_id, key, value FROM flavor_extra_specs`)
	if err != nil {
		return nil, fmt.Errorf("list extra specs: %w", err)
	}
	defer specs.Close()
	for specs.Next() {
		var id, k, v string
		if err := specs.Scan(&id, &k, &v); err != nil {
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].ExtraSpecs[k] = v
		}
	}
	return out, specs.Err()
}

func (st *store) flavorAccessible(ctx context.Context, flavorID, projectID string) (bool, error) {
	var n int
	err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM flavor_projects WHERE flavor_id = ? AND project_id = ?`,
		flavorID, projectID).Scan(&n)
	return n > 0, err
}

func (st *store) flavorsOfProject(ctx context.Context, projectID string) ([]string, error) {
	return stringsOf(ctx, st.db, `SELECT flavor_id FROM flavor_projects WHERE project_id = ?`, projectID)
}

func (st *store) flavorProjects(ctx context.Context, flavorID string) ([]string, error) {
	return stringsOf(ctx, st.db, `SELECT project_id FROM flavor_projects WHERE flavor_id = ? ORDER BY project_id`, flavorID)
}

func (st *store) updateFlavorDescription(ctx context.Context, id string, desc *string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE flavors SET description = ? WHERE id = ?`, nullStrPtr(desc), id)
		if err != nil {
			return fmt.Errorf("update flavor: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return errFlavorNotFound(id)
		}
		return nil
	})
}

func (st *store) deleteFlavor(ctx context.Context, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM flavors WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete flavor: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return errFlavorNotFound(id)
		}
		return nil
	})
}

func flavorExists(ctx context.Context, q db.Querier, id string) (*Flavor, error) {
	f, err := scanFlavor(q.QueryRowContext(ctx, `SELECT `+flavorCols+` FROM flavors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errFlavorNotFound(id)
	}
	return f, err
}

func (st *store) setExtraSpecs(ctx context.Context, id string, specs map[string]string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := flavorExists(ctx, tx, id); err != nil {
			return err
		}
		for k, v := range specs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO flavor_extra_specs (flavor_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (flavor_id, key) DO UPDATE SET value = excluded.value`, id, k, v); err != nil {
				return fmt.Errorf("set extra spec: %w", err)
			}
		}
		return nil
	})
}

func (st *store) deleteExtraSpec(ctx context.Context, id, key string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := flavorExists(ctx, tx, id); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM flavor_extra_specs WHERE flavor_id = ? AND key = ?`, id, key)
		if err != nil {
			return fmt.Errorf("delete extra spec: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fault.NotFoundf("Flavor %s has no extra specs with key %s.", id, key)
		}
		return nil
	})
}

func (st *store) addFlavorAccess(ctx context.Context, id, project string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		f, err := flavorExists(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.IsPublic {
			return fault.Conflictf("Can not add access to a public flavor.")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO flavor_projects (flavor_id, project_id) VALUES (?, ?)`, id, project)
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf(
				"Flavor access already exists for flavor %s and project %s combination.", id, project))
		}
		return err
	})
}

func (st *store) removeFlavorAccess(ctx context.Context, id, project string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := flavorExists(ctx, tx, id); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM flavor_projects WHERE flavor_id = ? AND project_id = ?`, id, project)
		if err != nil {
			return fmt.Errorf("remove flavor access: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fault.NotFoundf("Flavor access not found for %s / %s combination.", id, project)
		}
		return nil
	})
}
