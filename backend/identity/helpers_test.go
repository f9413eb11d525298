package identity

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const testAdminPassword = "admin-secret-password"

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a bootstrapped identity service on a fresh SQLite file.
type env struct {
	db    *db.DB
	path  string
	cfg   Config
	s     *Service
	boot  *BootstrapResult
	clock *fakeClock
	// admin acts as the bootstrap admin, scoped to the admin project.
	admin context.Context
}

func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	d, err := db.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now().UTC()}
	cfg := Config{
		Now:              clock.Now,
		BcryptCost:       bcrypt.MinCost,
		LoginMaxFailures: -1,
		Policy:           policy.New(PolicyRules()),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := s.Bootstrap(ctx, BootstrapConfig{
		AdminPassword: testAdminPassword,
		PublicURL:     "http://127.0.0.1:8080",
		Services: []ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
			{Type: "object-store", Name: "swift", Path: "/object-store/v1/AUTH_$(project_id)s"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: d, path: path, cfg: cfg, s: s, boot: boot, clock: clock}
	tok := e.login(t, PasswordAuth{UserID: boot.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: boot.AdminProject})
	e.admin = e.ctx(t, tok)
	return e
}

// login authenticates by password or fails the test.
func (e *env) login(t testing.TB, pa PasswordAuth, sc Scope) *TokenInfo {
	t.Helper()
	ti, err := e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodPassword}, Password: &pa, Scope: sc})
	if err != nil {
		t.Fatalf("login %+v %+v: %v", pa, sc, err)
	}
	return ti
}

// tryLogin authenticates by password.
func (e *env) tryLogin(pa PasswordAuth, sc Scope) (*TokenInfo, error) {
	return e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodPassword}, Password: &pa, Scope: sc})
}

// ctx returns a context carrying the credentials of tok, as the auth
// middleware would.
func (e *env) ctx(t testing.TB, tok *TokenInfo) context.Context {
	t.Helper()
	c, err := e.s.ValidateToken(context.Background(), tok.Token)
	if err != nil {
		t.Fatalf("validate fresh token: %v", err)
	}
	return auth.WithCredentials(context.Background(), c)
}

// valid reports whether tok still validates.
func (e *env) valid(tok *TokenInfo) bool {
	_, err := e.s.ValidateToken(context.Background(), tok.Token)
	return err == nil
}

func (e *env) roleID(t testing.TB, name string) string {
	t.Helper()
	rs, _, err := e.s.ListRoles(e.admin, RoleFilter{Name: name})
	if err != nil || len(rs) != 1 {
		t.Fatalf("role %s: %v %v", name, rs, err)
	}
	return rs[0].ID
}

func (e *env) project(t testing.TB, name string) *Project {
	t.Helper()
	p, err := e.s.CreateProject(e.admin, Project{Name: name, DomainID: DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

// user creates a user with password pw holding role on project (when both set).
func (e *env) user(t testing.TB, name, pw, projectID, role string) *User {
	t.Helper()
	u, err := e.s.CreateUser(e.admin, User{Name: name, DomainID: DefaultDomainID, Enabled: true}, pw)
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	if projectID != "" && role != "" {
		e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: projectID, RoleID: e.roleID(t, role)})
	}
	return u
}

func (e *env) grant(t testing.TB, a Assignment) {
	t.Helper()
	if err := e.s.Grant(e.admin, a); err != nil {
		t.Fatalf("grant %+v: %v", a, err)
	}
}

// member makes a project, a user with role on it, and the user's token and context.
func (e *env) member(t testing.TB, name, role string) (*Project, *User, *TokenInfo, context.Context) {
	t.Helper()
	p := e.project(t, name+"-project")
	u := e.user(t, name, name+"-password", p.ID, role)
	tok := e.login(t, PasswordAuth{UserID: u.ID, Password: name + "-password"}, Scope{ProjectID: p.ID})
	return p, u, tok, e.ctx(t, tok)
}

func wantKind(t testing.TB, err error, k fault.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %v", k)
	}
	if fault.KindOf(err) != k {
		t.Fatalf("got %v (kind %v), want kind %v", err, fault.KindOf(err), k)
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
