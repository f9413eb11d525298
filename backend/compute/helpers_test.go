package compute_test

// Test environment: a real identity service (for tokens), the hosts
// registry, the compute service and its API on a temporary SQLite file,
// all served by one httptest server mounted as the web server mounts them,
// with real node agents (fake driver) joining it on 127.0.0.1:0.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const testAdminPassword = "compute-admin-secret"

// fakeImages is an in-memory image service for compute's ImageGetter: a
// test double of another service that keeps state.
type fakeImages struct {
	mu     sync.Mutex
	images map[string]*compute.ImageInfo
	owner  map[string]string // private images: id -> project
}

func newFakeImages() *fakeImages {
	return &fakeImages{images: map[string]*compute.ImageInfo{}, owner: map[string]string{}}
}

func (f *fakeImages) add(im compute.ImageInfo) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if im.ID == "" {
		im.ID = fmt.Sprintf("img-%d", len(f.images)+1)
	}
	if im.Status == "" {
		im.Status = "active"
	}
	if im.DiskFormat == "" {
		im.DiskFormat = "qcow2"
	}
	f.images[im.ID] = &im
	return im.ID
}

func (f *fakeImages) GetImage(ctx context.Context, id string) (*compute.ImageInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im, ok := f.images[id]
	c, _ := auth.FromContext(ctx)
	if !ok || (f.owner[id] != "" && (c == nil || (c.ProjectID != f.owner[id] && !c.IsAdmin()))) {
		return nil, fault.NotFoundf("Image %s could not be found.", id)
	}
	cp := *im
	return &cp, nil
}

func (f *fakeImages) CreateSnapshotImage(ctx context.Context, spec compute.SnapshotSpec) (*compute.ImageInfo, error) {
	c, _ := auth.FromContext(ctx)
	id := f.add(compute.ImageInfo{Name: spec.Name, Status: "queued", DiskFormat: spec.DiskFormat,
		MinDiskGB: spec.MinDiskGB, MinRAMMB: spec.MinRAMMB, Properties: spec.Properties})
	f.mu.Lock()
	if c != nil {
		f.owner[id] = c.ProjectID
	}
	im := *f.images[id]
	f.mu.Unlock()
	return &im, nil
}

func (f *fakeImages) DeleteImage(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[id]; !ok {
		return fault.NotFoundf("Image %s could not be found.", id)
	}
	delete(f.images, id)
	return nil
}

func (f *fakeImages) get(id string) (*compute.ImageInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im, ok := f.images[id]
	return im, ok
}

// user is a test user with a project-scoped token.
type user struct {
	ID, ProjectID, Token string
	Ctx                  context.Context
}

type envOptions struct {
	downAfter time.Duration
	quotas    compute.QuotaLimits
	sched     func(*compute.Config)
}

type env struct {
	t       *testing.T
	db      *db.DB
	ids     *identity.Service
	reg     *hosts.Registry
	svc     *compute.Service
	images  *fakeImages
	srv     *httptest.Server
	base    string // <srv.URL>/compute/v2.1
	admin   user
	alice   user // member of project A
	bob     user // member of project B
	image   string
	bootRes *identity.BootstrapResult
	// transport carries the registry's calls to agents.
	transport *http.Transport
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	pol := policy.New(policy.BaseRules())
	pol.Register(identity.PolicyRules()...)
	pol.Register(compute.PolicyRules()...)
	ids, err := identity.New(ctx, d, identity.Config{Policy: pol, BcryptCost: 4, LoginMaxFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	boot, err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: testAdminPassword, PublicURL: srv.URL,
		Services: []identity.ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.downAfter == 0 {
		o.downAfter = 3 * time.Second
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	reg, err := hosts.New(ctx, d, hosts.Config{DownAfter: o.downAfter, HeartbeatInterval: 100 * time.Millisecond,
		Policy: pol, Logger: quietLogger(), HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	images := newFakeImages()
	cfg := compute.Config{Policy: pol, Hosts: reg, Images: images, Tokens: ids, PublicURL: srv.URL,
		ReconcileInterval: -1, Quotas: o.quotas, Logger: quietLogger()}
	if o.sched != nil {
		o.sched(&cfg)
	}
	svc, err := compute.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.EnsureDefaultFlavors(ctx); err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/identity", identity.NewAPI(ids, srv.URL+"/identity"))
	r.Mount("/agents", reg.Handler())
	r.Mount("/compute", compute.NewAPI(svc, srv.URL+"/compute"))
	h = r

	e := &env{t: t, db: d, ids: ids, reg: reg, svc: svc, images: images, srv: srv, base: srv.URL + "/compute/v2.1", bootRes: boot, transport: transport}
	e.admin = e.login(boot.AdminUserID, testAdminPassword, boot.AdminProject)
	e.alice = e.member("alice")
	e.bob = e.member("bob")
	e.image = images.add(compute.ImageInfo{ID: "cirros", Name: "cirros", Size: 20 << 20, VirtualSize: 112 << 20,
		OSHashValue: strings.Repeat("ab", 64)})
	return e
}

func (e *env) login(userID, password, projectID string) user {
	e.t.Helper()
	ti, err := e.ids.Authenticate(context.Background(), identity.AuthRequest{Methods: []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserID: userID, Password: password}, Scope: identity.Scope{ProjectID: projectID}})
	if err != nil {
		e.t.Fatalf("login %s: %v", userID, err)
	}
	c, err := e.ids.ValidateToken(context.Background(), ti.Token)
	if err != nil {
		e.t.Fatal(err)
	}
	return user{ID: userID, ProjectID: projectID, Token: ti.Token, Ctx: auth.WithCredentials(context.Background(), c)}
}

// member makes a project and a user holding member on it.
func (e *env) member(name string) user {
	e.t.Helper()
	p, err := e.ids.CreateProject(e.admin.Ctx, identity.Project{Name: name + "-project", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.ids.CreateUser(e.admin.Ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, name+"-password")
	if err != nil {
		e.t.Fatal(err)
	}
	roles, _, err := e.ids.ListRoles(e.admin.Ctx, identity.RoleFilter{Name: "member"})
	if err != nil || len(roles) != 1 {
		e.t.Fatalf("member role: %v %v", roles, err)
	}
	if err := e.ids.Grant(e.admin.Ctx, identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: roles[0].ID}); err != nil {
		e.t.Fatal(err)
	}
	return e.login(u.ID, name+"-password", p.ID)
}

// agent starts a node agent with the fake driver sized as given.
func (e *env) agent(hostname string, vcpus int, memMB, diskGB int64) *agenttest.Agent {
	e.t.Helper()
	tok, err := e.reg.CreateJoinToken(e.admin.Ctx, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	a := agenttest.Start(e.t, e.srv.URL, tok, agenttest.Options{Hostname: hostname, Fake: fake.Config{
		Inventory: agentapi.Inventory{VCPUs: vcpus, MemoryMB: memMB, DiskGB: diskGB, HypervisorType: "QEMU",
			HypervisorVersion: 8002000, VirtType: "kvm", CPUInfo: `{"arch": "x86_64"}`, HostIP: "127.0.0.1"}}})
	// Connections the registry's client dialled but never used look new to
	// the agent's server, whose shutdown waits 5 s for them: close them first.
	e.t.Cleanup(e.transport.CloseIdleConnections)
	// The scheduler caches hosts for a second; a new host must be seen now.
	e.svc.Scheduler().Invalidate()
	return a
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus waits until server id (seen by u) has status.
func (e *env) waitStatus(u user, id, status string) *compute.Server {
	e.t.Helper()
	var srv *compute.Server
	eventually(e.t, 15*time.Second, func() bool {
		s, err := e.svc.GetServer(u.Ctx, id)
		if err != nil {
			e.t.Fatalf("get server %s: %v", id, err)
		}
		srv = s
		return s.Status() == status && s.TaskState == ""
	}, "server %s to be %s", id, status)
	return srv
}

func (e *env) waitGone(u user, id string) {
	e.t.Helper()
	eventually(e.t, 15*time.Second, func() bool {
		_, err := e.svc.GetServer(u.Ctx, id)
		return fault.Is(err, fault.NotFound)
	}, "server %s to disappear", id)
}

// --- HTTP helpers ---

type resp struct {
	t      *testing.T
	req    string
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *resp) want(status int) *resp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.status, status, r.raw)
	}
	return r
}

// obj returns body[key] as an object.
func (r *resp) obj(key string) map[string]any {
	r.t.Helper()
	m, ok := r.body[key].(map[string]any)
	if !ok {
		r.t.Fatalf("%s: no object %q in %s", r.req, key, r.raw)
	}
	return m
}

func (r *resp) list(key string) []map[string]any {
	r.t.Helper()
	l, ok := r.body[key].([]any)
	if !ok {
		r.t.Fatalf("%s: no list %q in %s", r.req, key, r.raw)
	}
	out := make([]map[string]any, len(l))
	for i, v := range l {
		out[i], _ = v.(map[string]any)
	}
	return out
}

// faultMsg returns the message of a Nova fault body.
func (r *resp) faultMsg() string {
	for _, v := range r.body {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["message"].(string); ok {
				return s
			}
		}
	}
	return ""
}

// do calls the compute API at path (below /compute/v2.1) as token.
func (e *env) do(method, path, token string, body any, headers ...string) *resp {
	e.t.Helper()
	r, err := e.request(method, path, token, body, headers...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// request is do without failing the test, for goroutines.
func (e *env) request(method, path, token string, body any, headers ...string) (*resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &resp{t: e.t, req: method + " " + path, status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r, nil
}

// boot creates a server through the API and returns its ID.
func (e *env) boot(u user, name, flavor string, extra map[string]any, headers ...string) string {
	e.t.Helper()
	s := map[string]any{"name": name, "imageRef": e.image, "flavorRef": flavor}
	for k, v := range extra {
		s[k] = v
	}
	r := e.do("POST", "/servers", u.Token, map[string]any{"server": s}, headers...).want(http.StatusAccepted)
	return r.obj("server")["id"].(string)
}

// microversion is the header pair for compute 2.x.
func microversion(v string) []string { return []string{"OpenStack-API-Version", "compute " + v} }

// timeUnit is one second, the unit of test timeouts.
func (e *env) timeUnit() time.Duration { return time.Second }
