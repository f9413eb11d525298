package web

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/migrations"
)

func newTestStore(t *testing.T) *sessionStore {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), migrations.FS); err != nil {
		t.Fatal(err)
	}
	return newSessionStore(d, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestSessionStore(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }

	if _, found, err := s.FindCtx(ctx, "missing"); found || err != nil {
		t.Fatalf("missing: %v %v", found, err)
	}
	if err := s.CommitCtx(ctx, "a", []byte("one"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitCtx(ctx, "a", []byte("two"), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	b, found, err := s.FindCtx(ctx, "a")
	if err != nil || !found || string(b) != "two" {
		t.Fatalf("find: %q %v %v", b, found, err)
	}
	if err := s.Commit("old", []byte("x"), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.Find("old"); found {
		t.Fatal("an expired session was found")
	}
	n, err := s.deleteExpired(ctx)
	if err != nil || n != 1 {
		t.Fatalf("deleteExpired: %d %v", n, err)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal("deleting a missing session is not an error:", err)
	}
	if _, found, _ := s.FindCtx(ctx, "a"); found {
		t.Fatal("deleted session found")
	}
}

func TestSessionStoreCleanupLoop(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.CommitCtx(ctx, "gone", []byte("x"), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitCtx(ctx, "kept", []byte("x"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.startCleanup(10 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stopCleanup()
	s.stopCleanup() // twice is fine
}
