package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// sessionStore keeps scs sessions in the sessions table (migration 0002).
// The SQL is portable: ? placeholders and expiry as integer Unix seconds,
// compared with a value computed in Go, so the same statements run on
// PostgreSQL. Tokens are hashed by the session manager before they get
// here (HashTokenInStore), so the table never holds a usable cookie value.
type sessionStore struct {
	db  *db.DB
	now func() time.Time
	log *slog.Logger

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

var _ scs.CtxStore = (*sessionStore)(nil)

func newSessionStore(d *db.DB, log *slog.Logger) *sessionStore {
	return &sessionStore{db: d, now: time.Now, log: log}
}

// FindCtx returns the data of an unexpired session.
func (s *sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx,
		`SELECT data FROM sessions WHERE token = ? AND expiry > ?`, token, s.now().Unix()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find session: %w", err)
	}
	return b, true, nil
}

// CommitCtx inserts or replaces a session.
func (s *sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sessions (token, data, expiry) VALUES (?, ?, ?)
		 ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`,
		token, b, expiry.Unix())
	if err != nil {
		return fmt.Errorf("commit session: %w", err)
	}
	return nil
}

// DeleteCtx removes a session; a missing one is not an error.
func (s *sessionStore) DeleteCtx(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token = ?`, token); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Find, Commit and Delete satisfy scs.Store; the manager prefers the Ctx forms.
func (s *sessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *sessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// deleteExpired removes every expired session and reports how many.
func (s *sessionStore) deleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expiry <= ?`, s.now().Unix())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}

// startCleanup deletes expired sessions every interval until stopCleanup.
func (s *sessionStore) startCleanup(interval time.Duration) {
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if n, err := s.deleteExpired(ctx); err != nil {
					s.log.Warn("session cleanup failed", "err", err)
				} else if n > 0 {
					s.log.Debug("expired sessions removed", "count", n)
				}
				cancel()
			}
		}
	}()
}

// stopCleanup ends the cleanup loop and waits for it; safe to call twice.
func (s *sessionStore) stopCleanup() {
	if s.stop == nil {
		return
	}
	s.stopOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
}
