package hosts

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// store holds every SQL statement of the hosts registry. Each method that
// writes owns its transaction (db.Tx, BEGIN IMMEDIATE); reads run on the
// pool. Times are compared in Go, never in SQL, because RFC 3339 text with
// fractional seconds does not sort as text.
type store struct {
	db *db.DB
}

const hostColumns = `id, hostname, url, secret, inventory, last_heartbeat, disabled, disabled_reason, forced_down, created_at`

type scanner interface{ Scan(dest ...any) error }

// scanHost reads one hosts row, returning the host and its decoded secret.
func scanHost(s scanner) (*Host, []byte, error) {
	var (
		h                       Host
		secret, inv, hb, create string
		disabled, forced        int
	)
	if err := s.Scan(&h.ID, &h.Hostname, &h.URL, &secret, &inv, &hb, &disabled, &h.DisabledReason, &forced, &create); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal([]byte(inv), &h.Inventory); err != nil {
		return nil, nil, fmt.Errorf("decode inventory of host %s: %w", h.ID, err)
	}
	var err error
	if h.LastHeartbeat, err = db.ParseTime(hb); err != nil {
		return nil, nil, fmt.Errorf("parse last heartbeat of host %s: %w", h.ID, err)
	}
	if h.CreatedAt, err = db.ParseTime(create); err != nil {
		return nil, nil, fmt.Errorf("parse creation time of host %s: %w", h.ID, err)
	}
	h.Disabled, h.ForcedDown = disabled != 0, forced != 0
	key, err := agentapi.DecodeSecret(secret)
	if err != nil {
		return nil, nil, fmt.Errorf("decode secret of host %s: %w", h.ID, err)
	}
	return &h, key, nil
}

func (s *store) list(ctx context.Context) ([]Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostColumns+` FROM hosts ORDER BY hostname`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []Host
	for rows.Next() {
		h, _, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	return out, nil
}

func (s *store) get(ctx context.Context, id string) (*Host, []byte, error) {
	h, key, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostColumns+` FROM hosts WHERE id = ?`, id))
	if err != nil {
		return nil, nil, db.NotFound(err, fmt.Sprintf("Compute host %s could not be found.", id))
	}
	return h, key, nil
}

func (s *store) getByHostname(ctx context.Context, hostname string) (*Host, error) {
	h, _, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostColumns+` FROM hosts WHERE hostname = ?`, hostname))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Compute host %s could not be found.", hostname))
	}
	return h, nil
}

// createJoinToken stores a token hash and drops tokens that have expired, so
// the table never grows beyond the tokens in use.
func (s *store) createJoinToken(ctx context.Context, hash string, expires, now time.Time) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT token_hash, expires_at FROM host_join_tokens`)
		if err != nil {
			return fmt.Errorf("list join tokens: %w", err)
		}
		var stale []string
		for rows.Next() {
			var h, exp string
			if err := rows.Scan(&h, &exp); err != nil {
				rows.Close()
				return fmt.Errorf("list join tokens: %w", err)
			}
			if t, err := db.ParseTime(exp); err != nil || !now.Before(t) {
				stale = append(stale, h)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list join tokens: %w", err)
		}
		for _, h := range stale {
			if _, err := tx.ExecContext(ctx, `DELETE FROM host_join_tokens WHERE token_hash = ?`, h); err != nil {
				return fmt.Errorf("drop expired join token: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO host_join_tokens (token_hash, expires_at, created_at) VALUES (?, ?, ?)`,
			hash, db.FormatTime(expires), db.FormatTime(now))
		if err != nil {
			return fmt.Errorf("store join token: %w", err)
		}
		return nil
	})
}

// errBadJoinToken never says whether the token was unknown or expired.
func errBadJoinToken() error {
	return fault.Unauthorizedf("The join token is invalid or has expired.")
}

// join checks the join token and creates the host or, for a known
// hostname, rotates its secret and refreshes its URL and inventory. The
// disabled and forced-down marks survive a re-join: they are the operator's.
func (s *store) join(ctx context.Context, tokenHash, hostname, url string, inv agentapi.Inventory, secret []byte, now time.Time) (*Host, error) {
	invJSON, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	var out *Host
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var exp string
		err := tx.QueryRowContext(ctx, `SELECT expires_at FROM host_join_tokens WHERE token_hash = ?`, tokenHash).Scan(&exp)
		if err == sql.ErrNoRows {
			return errBadJoinToken()
		}
		if err != nil {
			return fmt.Errorf("check join token: %w", err)
		}
		if t, err := db.ParseTime(exp); err != nil || !now.Before(t) {
			return errBadJoinToken()
		}
		ts := db.FormatTime(now)
		sec := agentapi.EncodeSecret(secret)
		var id string
		err = tx.QueryRowContext(ctx, `SELECT id FROM hosts WHERE hostname = ?`, hostname).Scan(&id)
		switch {
		case err == sql.ErrNoRows:
			id = uuid.NewString()
			_, err = tx.ExecContext(ctx, `INSERT INTO hosts (id, hostname, url, secret, inventory, last_heartbeat, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, hostname, url, sec, string(invJSON), ts, ts, ts)
			if db.IsUniqueViolation(err) {
				return fault.Wrap(fault.Conflict, err, "Another agent is joining with the same hostname.")
			}
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE hosts SET url = ?, secret = ?, inventory = ?, last_heartbeat = ?, updated_at = ?
				WHERE id = ?`, url, sec, string(invJSON), ts, ts, id)
		}
		if err != nil {
			return fmt.Errorf("register host %q: %w", hostname, err)
		}
		h, _, err := scanHost(tx.QueryRowContext(ctx, `SELECT `+hostColumns+` FROM hosts WHERE id = ?`, id))
		if err != nil {
			return fmt.Errorf("read back host %q: %w", hostname, err)
		}
		out = h
		return nil
	})
	return out, err
}

// heartbeatUpdate is one host's new inventory and time of life.
type heartbeatUpdate struct {
	ID        string
	Inventory agentapi.Inventory
	URL       string // empty keeps the stored URL
	At        time.Time
}

// heartbeats stores a batch of heartbeats, one UPDATE each and no reads, in
// one transaction, so a controller can coalesce many agents' heartbeats into
// a single write. A host that no longer exists is NotFound only when the
// batch holds that single host.
func (s *store) heartbeats(ctx context.Context, ups []heartbeatUpdate) error {
	encoded := make([]string, len(ups))
	for i, u := range ups {
		b, err := json.Marshal(u.Inventory)
		if err != nil {
			return fmt.Errorf("encode inventory: %w", err)
		}
		encoded[i] = string(b)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, u := range ups {
			ts := db.FormatTime(u.At)
			res, err := tx.ExecContext(ctx, `UPDATE hosts SET inventory = ?, last_heartbeat = ?, updated_at = ?,
				url = CASE WHEN ? = '' THEN url ELSE ? END WHERE id = ?`, encoded[i], ts, ts, u.URL, u.URL, u.ID)
			if err != nil {
				return fmt.Errorf("store heartbeat of host %s: %w", u.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 && len(ups) == 1 {
				return fault.NotFoundf("Compute host %s could not be found.", u.ID)
			}
		}
		return nil
	})
}

// update runs one UPDATE on host id, NotFound when there is no such host.
func (s *store) update(ctx context.Context, id, set string, args ...any) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE hosts SET `+set+` WHERE id = ?`, append(args, id)...)
		if err != nil {
			return fmt.Errorf("update host %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update host %s: %w", id, err)
		} else if n == 0 {
			return fault.NotFoundf("Compute host %s could not be found.", id)
		}
		return nil
	})
}

func (s *store) setDisabled(ctx context.Context, id string, disabled bool, reason string, now time.Time) error {
	return s.update(ctx, id, `disabled = ?, disabled_reason = ?, updated_at = ?`, b2i(disabled), reason, db.FormatTime(now))
}

func (s *store) setForcedDown(ctx context.Context, id string, down bool, now time.Time) error {
	return s.update(ctx, id, `forced_down = ?, updated_at = ?`, b2i(down), db.FormatTime(now))
}

func (s *store) delete(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hosts WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete host %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("Compute host %s could not be found.", id)
		}
		return nil
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
