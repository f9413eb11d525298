// Package db opens Nimbus's SQLite database with the pragmas every connection
// needs, applies the embedded migrations in order, and runs transactions that
// take the write lock up front.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the control plane's database handle.
type DB struct {
	*sql.DB
}

// Open opens (creating if needed) the SQLite file at path. Every connection
// gets foreign keys, a busy timeout and WAL through the DSN, and every
// transaction begins IMMEDIATE so a writer never meets "database is locked"
// half-way through.
func Open(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve database path: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// SQLite serialises writers anyway; a small pool keeps readers concurrent
	// under WAL without piling up connections.
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(8)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sdb.Ping(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	return &DB{sdb}, nil
}

// Tx runs fn in a transaction (BEGIN IMMEDIATE), committing when fn returns
// nil and rolling back otherwise.
func (d *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Migrate applies, in version order, every file named NNNN_name.sql in fsys
// that is not yet recorded in schema_migrations. Each file runs in its own
// transaction with its record, so a failed migration leaves nothing behind.
func (d *DB) Migrate(ctx context.Context, fsys fs.FS) error {
	if _, err := d.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	seen := map[int]string{}
	for _, n := range names {
		prefix, _, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return fmt.Errorf("migration %q: name must start with a number and an underscore", n)
		}
		if other, dup := seen[v]; dup {
			return fmt.Errorf("migrations %q and %q share version %d", other, n, v)
		}
		seen[v] = n
		ms = append(ms, migration{v, n})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for _, m := range ms {
		var one int
		err := d.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version).Scan(&one)
		if err == nil {
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check migration %s: %w", m.name, err)
		}
		body, err := fs.ReadFile(fsys, m.name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		err = d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, Now())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Now is the current time as stored: UTC RFC 3339 text, portable to PostgreSQL.
func Now() string { return FormatTime(time.Now()) }

// FormatTime formats t the way timestamps are stored.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime parses a stored timestamp; the empty string is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, which stores translate to fault.Conflict.
func IsUniqueViolation(err error) bool {
	var ce interface{ Code() int }
	if errors.As(err, &ce) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return ce.Code() == 2067 || ce.Code() == 1555
	}
	return false
}

// IsForeignKeyViolation reports whether err is a FOREIGN KEY constraint failure.
func IsForeignKeyViolation(err error) bool {
	var ce interface{ Code() int }
	if errors.As(err, &ce) {
		return ce.Code() == 787 // SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// NotFound translates sql.ErrNoRows into a fault.NotFound with msg and passes
// other errors through.
func NotFound(err error, msg string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fault.Wrap(fault.NotFound, err, msg)
	}
	return err
}

// Querier is what *sql.Tx and *sql.DB share, so a store helper runs inside
// its caller's transaction or directly on the pool.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Scanner is what *sql.Row and *sql.Rows share.
type Scanner interface{ Scan(dest ...any) error }

// Bool is b as stored: INTEGER 1 or 0, the same on SQLite and PostgreSQL.
func Bool(b bool) int {
	if b {
		return 1
	}
	return 0
}
