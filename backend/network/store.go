package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// store holds every SQL statement of the network service. A change runs
// as one transaction (write, BEGIN IMMEDIATE) in which the service calls
// the statement helpers of q, so IP allocation, quota and uniqueness
// checks see the database as the commit will; reads run on the pool
// (read) and never queue behind the write lock.
type store struct {
	db *db.DB
}

// q runs the statements of one operation: inside its transaction for a
// change, on the pool for a read.
type q struct {
	ctx context.Context
	x   db.Querier
}

// read returns statement helpers over the pool.
func (st *store) read(ctx context.Context) *q { return &q{ctx: ctx, x: st.db} }

// write runs fn in one transaction (BEGIN IMMEDIATE), committing when it
// returns nil.
func (st *store) write(ctx context.Context, fn func(*q) error) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return fn(&q{ctx: ctx, x: tx}) })
}

func (x *q) exec(query string, args ...any) (sql.Result, error) {
	return x.x.ExecContext(x.ctx, query, args...)
}

func (x *q) query(query string, args ...any) (*sql.Rows, error) {
	return x.x.QueryContext(x.ctx, query, args...)
}

func (x *q) row(query string, args ...any) *sql.Row {
	return x.x.QueryRowContext(x.ctx, query, args...)
}

// count runs a SELECT COUNT(*) statement.
func (x *q) count(query string, args ...any) (int, error) {
	var n int
	err := x.row(query, args...).Scan(&n)
	return n, err
}

// strings runs a query of one text column.
func (x *q) strings(query string, args ...any) ([]string, error) {
	rows, err := x.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// mustAffect turns "no row changed" into notFound.
func mustAffect(res sql.Result, err error, notFound error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}

// noRows translates sql.ErrNoRows into nf.
func noRows(err error, nf error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nf
	}
	return err
}

// tsLayout stores timestamps with a fixed-width fraction, so that text
// order is time order (RFC 3339 with trailing zeros trimmed is not).
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

func ts(t time.Time) string { return t.UTC().Format(tsLayout) }

func parseTS(s string) time.Time {
	t, _ := db.ParseTime(s)
	return t
}

// toJSON encodes a small list or map for a JSON text column.
func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("network: encode %T: %v", v, err))
	}
	return string(b)
}

// fromJSON decodes a JSON text column; a malformed value is an internal
// error, since only this package writes these columns.
func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decode stored %T: %w", v, err)
	}
	return nil
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// chunkSize bounds the IN lists of batch loads, well below SQLite's
// variable limit.
const chunkSize = 500

// inChunks calls fn with ids in slices of at most chunkSize.
func inChunks(ids []string, fn func(part []string) error) error {
	for len(ids) > 0 {
		n := min(len(ids), chunkSize)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// orderByIDs returns the values of m in the order of ids, skipping IDs
// that vanished between listing and loading.
func orderByIDs[T any](ids []string, m map[string]*T) []T {
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		if v, ok := m[id]; ok {
			out = append(out, *v)
		}
	}
	return out
}
