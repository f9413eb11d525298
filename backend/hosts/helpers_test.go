package hosts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// clock is a settable clock for up/down and expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a Listener that keeps what it hears.
type recorder struct {
	mu         sync.Mutex
	heartbeats []agentapi.Heartbeat
	events     []agentapi.Event
	ops        []agentapi.Operation
	known      map[string]bool // instances the "controller" knows; nil: all
	err        error
}

func (r *recorder) Heartbeat(_ context.Context, _ hosts.Host, hb agentapi.Heartbeat) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	r.heartbeats = append(r.heartbeats, hb)
	var orphans []string
	if r.known != nil {
		for _, s := range hb.Instances {
			if !r.known[s.UUID] {
				orphans = append(orphans, s.UUID)
			}
		}
	}
	return orphans, nil
}

func (r *recorder) Events(_ context.Context, _ hosts.Host, evs []agentapi.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) Operation(_ context.Context, _ hosts.Host, op agentapi.Operation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.ops = append(r.ops, op)
	return nil
}

// op waits for the outcome of operation id.
func (r *recorder) op(t *testing.T, id string) agentapi.Operation {
	t.Helper()
	var got agentapi.Operation
	eventually(t, 10*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, o := range r.ops {
			if o.ID == id {
				got = o
				return true
			}
		}
		return false
	})
	return got
}

// memImages is an in-memory ImageSource.
type memImages struct {
	mu      sync.Mutex
	content map[string][]byte
	opens   int
}

func (m *memImages) OpenImage(_ context.Context, id string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens++
	b, ok := m.content[id]
	if !ok {
		return nil, 0, fault.NotFoundf("Image %s could not be found.", id)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (m *memImages) UploadImage(_ context.Context, id string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err // the registry's verifying reader failed: commit nothing
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.content[id] = b
	return nil
}

type env struct {
	reg    *hosts.Registry
	db     *db.DB
	srv    *httptest.Server
	clock  *clock
	rec    *recorder
	images *memImages
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv runs a registry on a real SQLite file, mounted at /agents the way
// the web router mounts it.
func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with cfg adjusted by opt.
func newEnvWith(t *testing.T, opt func(*hosts.Config)) *env {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), migrations.FS); err != nil {
		t.Fatal(err)
	}
	e := &env{db: d, clock: &clock{t: time.Now()}, rec: &recorder{}, images: &memImages{content: map[string][]byte{}}}
	cfg := hosts.Config{
		Now: e.clock.Now, HeartbeatInterval: time.Second, Logger: quietLogger(),
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
	}
	if opt != nil {
		opt(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.reg, err = hosts.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.Subscribe(e.rec)
	e.reg.SetImageSource(e.images)
	r := chi.NewRouter()
	r.Mount("/agents", e.reg.Handler())
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

func adminCtx() context.Context {
	return auth.WithCredentials(context.Background(), &auth.Credentials{
		UserID: "admin", ProjectID: "p1", Roles: []string{"admin", "member", "reader"},
	})
}

func (e *env) token(t *testing.T) string {
	t.Helper()
	tok, err := e.reg.CreateJoinToken(adminCtx(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// join posts a join and returns the status and, on 200, the credential.
func (e *env) join(t *testing.T, token, hostname, url string) (int, agentapi.JoinResponse) {
	t.Helper()
	body, _ := json.Marshal(agentapi.JoinRequest{JoinToken: token, Hostname: hostname, URL: url,
		Inventory: agentapi.Inventory{VCPUs: 4, MemoryMB: 8192, DiskGB: 100, HypervisorType: "QEMU", VirtType: "qemu"}})
	resp, err := http.Post(e.srv.URL+agentapi.PathJoin, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jr agentapi.JoinResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&jr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, jr
}

// signed sends a request signed as agent id with secret (base64).
func (e *env) signed(t *testing.T, method, path, id, secret string, body []byte) *http.Response {
	t.Helper()
	req := e.signedReq(t, method, path, id, secret, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) signedReq(t *testing.T, method, path, id, secret string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	key, err := agentapi.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	agentapi.Sign(req, id, key, body, time.Now())
	return req
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isKind(err error, k fault.Kind) bool {
	var fe *fault.Error
	return errors.As(err, &fe) && fe.Kind == k
}

func decodeBody(r *http.Response, v any) error { return json.NewDecoder(r.Body).Decode(v) }

func itoa(n int) string { return strconv.Itoa(n) }
