package db

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenSetsPragmas(t *testing.T) {
	d := openTemp(t)
	var mode string
	var fk, timeout int
	if err := d.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := d.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := d.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != 10000 {
		t.Errorf("busy_timeout = %d, %v; want 10000", timeout, err)
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		files   fstest.MapFS
		wantErr bool
		tables  []string
	}{
		{"in version order", fstest.MapFS{
			"0002_b.sql": {Data: []byte(`CREATE TABLE b (id TEXT PRIMARY KEY, a_id TEXT REFERENCES a(id));`)},
			"0001_a.sql": {Data: []byte(`CREATE TABLE a (id TEXT PRIMARY KEY);`)},
		}, false, []string{"a", "b"}},
		{"bad name", fstest.MapFS{"x_a.sql": {Data: []byte(`SELECT 1;`)}}, true, nil},
		{"duplicate version", fstest.MapFS{
			"0001_a.sql": {Data: []byte(`CREATE TABLE a (id TEXT);`)},
			"01_b.sql":   {Data: []byte(`CREATE TABLE b (id TEXT);`)},
		}, true, nil},
		{"failing file leaves nothing", fstest.MapFS{
			"0001_a.sql": {Data: []byte(`CREATE TABLE a (id TEXT); CREATE TABLE broken (;`)},
		}, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := openTemp(t)
			err := d.Migrate(ctx, tc.files)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Migrate err = %v, wantErr %v", err, tc.wantErr)
			}
			for _, tbl := range tc.tables {
				var n int
				if err := d.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?`, tbl).Scan(&n); err != nil || n != 1 {
					t.Errorf("table %s missing", tbl)
				}
			}
			if tc.wantErr {
				var n int
				_ = d.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('a','broken')`).Scan(&n)
				if n != 0 {
					t.Errorf("a failed migration left %d tables behind", n)
				}
				return
			}
			// Applying again is a no-op, and a new file is picked up.
			tc.files["0003_c.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE c (id TEXT);`)}
			if err := d.Migrate(ctx, tc.files); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			var versions int
			_ = d.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&versions)
			if versions != 3 {
				t.Errorf("schema_migrations has %d rows, want 3", versions)
			}
		})
	}
}

func TestTxAndConstraintTranslation(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	if _, err := d.Exec(`CREATE TABLE p (id TEXT PRIMARY KEY, name TEXT UNIQUE);
		CREATE TABLE c (id TEXT PRIMARY KEY, p_id TEXT NOT NULL REFERENCES p(id))`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO p VALUES ('1', 'one')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want boom", err)
	}
	var n int
	_ = d.QueryRow(`SELECT count(*) FROM p`).Scan(&n)
	if n != 0 {
		t.Fatalf("rolled-back insert is visible")
	}
	if err := d.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO p VALUES ('1', 'one')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err = d.Exec(`INSERT INTO p VALUES ('2', 'one')`)
	if !IsUniqueViolation(err) {
		t.Errorf("duplicate name: IsUniqueViolation false for %v", err)
	}
	_, err = d.Exec(`INSERT INTO p VALUES ('1', 'other')`)
	if !IsUniqueViolation(err) {
		t.Errorf("duplicate key: IsUniqueViolation false for %v", err)
	}
	_, err = d.Exec(`INSERT INTO c VALUES ('c1', 'missing')`)
	if !IsForeignKeyViolation(err) || IsUniqueViolation(err) {
		t.Errorf("dangling reference: got %v", err)
	}
	err = NotFound(d.QueryRow(`SELECT id FROM p WHERE id = 'x'`).Scan(new(string)), "Could not find p: x.")
	if !fault.Is(err, fault.NotFound) || fault.Message(err) != "Could not find p: x." {
		t.Errorf("NotFound translation = %v", err)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	s := Now()
	tm, err := ParseTime(s)
	if err != nil || tm.Location().String() != "UTC" || FormatTime(tm) != s {
		t.Errorf("round trip of %q: %v %v", s, tm, err)
	}
	if Bool(true) != 1 || Bool(false) != 0 {
		t.Errorf("Bool stores true as 1 and false as 0")
	}
	if z, err := ParseTime(""); err != nil || !z.IsZero() {
		t.Errorf("empty time: %v %v", z, err)
	}
}
