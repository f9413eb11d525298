package compute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const keypairCols = `id, name, user_id, type, public_key, fingerprint, created_at`

func scanKeypair(sc db.Scanner) (*Keypair, error) {
	var k Keypair
	var created string
	if err := sc.Scan(&k.ID, &k.Name, &k.UserID, &k.Type, &k.PublicKey, &k.Fingerprint, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = parseTime(created)
	return &k, nil
}

// createKeypair inserts k unless the user already holds limit key pairs
// (a negative limit is unlimited); the count and the insert share one
// transaction, so parallel imports cannot exceed the quota.
func (st *store) createKeypair(ctx context.Context, k *Keypair, limit int64) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keypairs WHERE user_id = ?`, k.UserID).Scan(&n); err != nil {
			return fmt.Errorf("count key pairs: %w", err)
		}
		if limit >= 0 && n+1 > limit {
			return fault.OverQuotaf("Quota exceeded, too many key pairs.")
		}
		id, err := nextSeq(ctx, tx, "keypairs", "id")
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO keypairs (`+keypairCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, k.Name, k.UserID, k.Type, k.PublicKey, k.Fingerprint, fmtTime(k.CreatedAt))
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Key pair '%s' already exists.", k.Name))
		}
		if err != nil {
			return fmt.Errorf("insert key pair: %w", err)
		}
		k.ID = id
		return nil
	})
}

func (st *store) listKeypairs(ctx context.Context, userID string) ([]Keypair, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE user_id = ? ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("list key pairs: %w", err)
	}
	defer rows.Close()
	var out []Keypair
	for rows.Next() {
		k, err := scanKeypair(rows)
		if err != nil {
			return nil, fmt.Errorf("list key pairs: %w", err)
		}
		out = append(out, *k)
	}
	return out, rows.Err()
}

func (st *store) getKeypair(ctx context.Context, q db.Querier, userID, name string) (*Keypair, error) {
	k, err := scanKeypair(q.QueryRowContext(ctx, `SELECT `+keypairCols+` FROM keypairs WHERE user_id = ? AND name = ?`, userID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.Wrap(fault.NotFound, err, fmt.Sprintf("Keypair %s not found for user %s", name, userID))
	}
	if err != nil {
		return nil, fmt.Errorf("read key pair: %w", err)
	}
	return k, nil
}

func (st *store) deleteKeypair(ctx context.Context, userID, name string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM keypairs WHERE user_id = ? AND name = ?`, userID, name)
		if err != nil {
			return fmt.Errorf("delete key pair: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fault.NotFoundf("Keypair %s not found for user %s", name, userID)
		}
		return nil
	})
}
