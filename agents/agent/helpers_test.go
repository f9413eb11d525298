package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
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

// The agent is tested against the real controller side (backend/hosts on
// a real SQLite file): it is cheap, and a stand-in would only test our
// reading of the contract twice.

// recorder is a hosts.Listener that keeps what it hears.
type recorder struct {
	mu      sync.Mutex
	events  []agentapi.Event
	ops     []agentapi.Operation
	hbs     int
	known   map[string]bool // nil: every instance is known
	failOps int             // refuse this many operation deliveries first
}

func (r *recorder) Heartbeat(_ context.Context, _ hosts.Host, hb agentapi.Heartbeat) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hbs++
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
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) Operation(_ context.Context, _ hosts.Host, op agentapi.Operation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOps > 0 {
		r.failOps--
		return errors.New("controller database busy")
	}
	r.ops = append(r.ops, op)
	return nil
}

// op waits for the outcome of operation id.
func (r *recorder) op(t *testing.T, id string) agentapi.Operation {
	t.Helper()
	var got agentapi.Operation
	eventually(t, 15*time.Second, func() bool {
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

func (r *recorder) countOps(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		if o.ID == id {
			n++
		}
	}
	return n
}

// memImages is an in-memory image store.
type memImages struct {
	mu      sync.Mutex
	content map[string][]byte
	opens   map[string]int
}

func (m *memImages) OpenImage(_ context.Context, id string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opens[id]++
	b, ok := m.content[id]
	if !ok {
		return nil, 0, fault.NotFoundf("Image %s could not be found.", id)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (m *memImages) UploadImage(_ context.Context, id string, r io.Reader, _ int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.content[id] = b
	return nil
}

type env struct {
	reg    *hosts.Registry
	srv    *httptest.Server
	rec    *recorder
	images *memImages
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), migrations.FS); err != nil {
		t.Fatal(err)
	}
	e := &env{rec: &recorder{}, images: &memImages{content: map[string][]byte{}, opens: map[string]int{}}}
	e.reg, err = hosts.New(context.Background(), d, hosts.Config{Logger: quietLogger(), HeartbeatInterval: time.Second})
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

func (e *env) token(t *testing.T) string {
	t.Helper()
	ctx := auth.WithCredentials(context.Background(), &auth.Credentials{UserID: "admin", System: true, Roles: []string{"admin"}})
	tok, err := e.reg.CreateJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) client(t *testing.T, hostID string) *hosts.Client {
	t.Helper()
	c, err := e.reg.Client(context.Background(), hostID)
	if err != nil {
		t.Fatal(err)
	}
	return c
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

func spec(uuid string) agentapi.InstanceSpec {
	return agentapi.InstanceSpec{
		UUID: uuid, Name: "vm", ProjectID: "p1", VCPUs: 1, MemoryMB: 128, RootGB: 1,
		Image: agentapi.Image{ID: "img1", DiskFormat: "qcow2", Size: 4, Checksum: strings.Repeat("ab", 64)},
	}
}

func uuidN(n int) string {
	const base = "00000000-0000-4000-8000-0000000000"
	return base + string(rune('0'+n/10)) + string(rune('0'+n%10))
}
