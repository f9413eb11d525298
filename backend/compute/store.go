package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// store holds the SQL of the compute service, split by topic over the
// store_*.go files. Each method that writes owns its transaction (db.Tx,
// BEGIN IMMEDIATE); reads run on the pool. Helpers take a db.Querier: the
// *sql.Tx of the caller's transaction, or the pool.
type store struct {
	db *db.DB
}

// ping checks that compute's schema is in place.
func (st *store) ping(ctx context.Context) error {
	var n int
	return st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM flavors`).Scan(&n)
}

func fmtTime(t time.Time) string { return db.FormatTime(t) }

func parseTime(s string) time.Time {
	t, _ := db.ParseTime(s)
	return t
}

func timePtr(ns sql.NullString) *time.Time {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	t := parseTime(ns.String)
	return &t
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func strPtr(ns sql.NullString) *string {
	if !ns.Valid {
		return nil
	}
	s := ns.String
	return &s
}

func nullStrPtr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only our own types are marshalled
	}
	return string(b)
}

func newUUID() string { return uuid.NewString() }

// nextSeq returns one more than the largest value of column in table, the
// portable way to number rows inside a write transaction.
func nextSeq(ctx context.Context, q db.Querier, table, column string) (int64, error) {
	var n sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(`+column+`) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("number %s: %w", table, err)
	}
	return n.Int64 + 1, nil
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// keyValues reads (key, value) rows into a map.
func keyValues(ctx context.Context, q db.Querier, query string, args ...any) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// strings reads one string column.
func stringsOf(ctx context.Context, q db.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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
