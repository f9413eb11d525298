package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ---- application credentials ----

const appCredCols = `id, name, user_id, project_id, description, expires_at, unrestricted`

func scanAppCred(r db.Scanner) (AppCredential, error) {
	var a AppCredential
	var exp sql.NullString
	err := r.Scan(&a.ID, &a.Name, &a.UserID, &a.ProjectID, &a.Description, &exp, &a.Unrestricted)
	if exp.Valid {
		t := parseTime(exp.String)
		a.ExpiresAt = &t
	}
	return a, err
}

func appCredNotFound(id string) error {
	return fault.NotFoundf("Could not find application credential: %s.", id)
}

func appCredRoles(ctx context.Context, q db.Querier, id string) ([]Role, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+roleCols+` FROM roles WHERE id IN
		(SELECT role_id FROM application_credential_roles WHERE application_credential_id = ?) ORDER BY name`, id)
	if err != nil {
		return nil, err
	}
	rs, _, err := collect(rows, 0, scanRole)
	if rs == nil {
		rs = []Role{}
	}
	return rs, err
}

// appCred returns an application credential with its roles and secret hash.
func (st *store) appCred(ctx context.Context, where string, args ...any) (*AppCredential, string, error) {
	var hash string
	var a AppCredential
	var exp sql.NullString
	err := st.db.QueryRowContext(ctx, `SELECT `+appCredCols+`, secret_hash FROM application_credentials WHERE `+where, args...).
		Scan(&a.ID, &a.Name, &a.UserID, &a.ProjectID, &a.Description, &exp, &a.Unrestricted, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fault.Wrap(fault.NotFound, err, "Could not find application credential.")
	}
	if err != nil {
		return nil, "", err
	}
	if exp.Valid {
		t := parseTime(exp.String)
		a.ExpiresAt = &t
	}
	if a.Roles, err = appCredRoles(ctx, st.db, a.ID); err != nil {
		return nil, "", err
	}
	return &a, hash, nil
}

func (st *store) listAppCreds(ctx context.Context, userID, name string) ([]AppCredential, error) {
	q := `SELECT ` + appCredCols + ` FROM application_credentials WHERE user_id = ?`
	args := []any{userID}
	if name != "" {
		q, args = q+` AND name = ?`, append(args, name)
	}
	rows, err := st.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	acs, _, err := collect(rows, 0, scanAppCred)
	if err != nil {
		return nil, err
	}
	for i := range acs {
		if acs[i].Roles, err = appCredRoles(ctx, st.db, acs[i].ID); err != nil {
			return nil, err
		}
	}
	if acs == nil {
		acs = []AppCredential{}
	}
	return acs, nil
}

func (st *store) createAppCred(ctx context.Context, a *AppCredential, hash string, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var exp sql.NullString
		if a.ExpiresAt != nil {
			exp = nullStr(db.FormatTime(*a.ExpiresAt))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO application_credentials (id, name, user_id, project_id, description,
			secret_hash, expires_at, unrestricted, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, a.UserID, a.ProjectID, a.Description, hash, exp, db.Bool(a.Unrestricted), db.FormatTime(now))
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf(
				"Conflict occurred attempting to store application_credential - Duplicate entry found with name %s.", a.Name))
		}
		if err != nil {
			return err
		}
		for _, r := range a.Roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO application_credential_roles (application_credential_id, role_id)
				VALUES (?, ?) ON CONFLICT DO NOTHING`, a.ID, r.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

func (st *store) deleteAppCred(ctx context.Context, userID, id string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM application_credentials WHERE id = ? AND user_id = ?`, id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return appCredNotFound(id)
		}
		return nil
	})
}

// ---- revocation events ----

// stampLayout is RFC 3339 with a fixed nine-digit fraction, so stored
// stamps sort as text in time order on every engine.
const stampLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatStamp(ns int64) string { return time.Unix(0, ns).UTC().Format(stampLayout) }

func parseStamp(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

func (st *store) insertRevocations(ctx context.Context, evs []revocationEvent, revokedAt time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, e := range evs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO revocation_events (id, user_id, project_id, domain_id, role_id,
				audit_id, application_credential_id, issued_before, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				newID(), e.UserID, e.ProjectID, e.DomainID, e.RoleID, e.AuditID, e.AppCredID,
				formatStamp(e.IssuedBefore), db.FormatTime(revokedAt)); err != nil {
				return fmt.Errorf("record revocation event: %w", err)
			}
		}
		return nil
	})
}

// revocations loads every event issued after since (unix nanoseconds).
func (st *store) revocations(ctx context.Context, since int64) ([]revocationEvent, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT user_id, project_id, domain_id, role_id, audit_id, application_credential_id,
		issued_before FROM revocation_events WHERE issued_before >= ?`, formatStamp(since))
	if err != nil {
		return nil, err
	}
	evs, _, err := collect(rows, 0, func(r db.Scanner) (revocationEvent, error) {
		var e revocationEvent
		var ib string
		if err := r.Scan(&e.UserID, &e.ProjectID, &e.DomainID, &e.RoleID, &e.AuditID, &e.AppCredID, &ib); err != nil {
			return e, err
		}
		ns, err := parseStamp(ib)
		if err != nil {
			return e, fmt.Errorf("revocation event issued_before %q: %w", ib, err)
		}
		e.IssuedBefore = ns
		return e, nil
	})
	return evs, err
}

// pruneRevocations deletes events no token can outlive any more.
func (st *store) pruneRevocations(ctx context.Context, before int64) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM revocation_events WHERE issued_before < ?`, formatStamp(before))
		return err
	})
}
