package image

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const (
	testAdminPassword = "admin-secret-password"
	testDemoPassword  = "demo-secret-password"
)

// fakeClock is a clock tests move by hand; every reading advances it a
// millisecond so creation order is strict.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// env is an identity service and an image service on one fresh SQLite
// file, with contexts for the bootstrap admin and the demo user.
type env struct {
	t     testing.TB
	db    *db.DB
	ids   *identity.Service
	s     *Service
	cfg   Config
	boot  *identity.BootstrapResult
	pol   *policy.Engine
	data  string
	admin context.Context
	demo  context.Context
	// demoProject and demoUser are the demo project's and user's IDs.
	demoProject string
	demoUser    string
	roles       map[string]string
}

func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	return newEnvAt(t, "http://127.0.0.1:8080", tweak...)
}

// newEnvAt is newEnv with the catalog pointing at publicURL.
func newEnvAt(t testing.TB, publicURL string, tweak ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := db.Open(filepath.Join(dir, "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	pol := policy.New(policy.BaseRules())
	pol.Register(identity.PolicyRules()...)
	pol.Register(PolicyRules()...)
	ids, err := identity.New(ctx, d, identity.Config{Policy: pol, BcryptCost: bcrypt.MinCost, LoginMaxFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: testAdminPassword,
		PublicURL:     publicURL,
		Services: []identity.ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "image", Name: "glance", Path: "/image"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	cfg := Config{DataDir: filepath.Join(dir, "data"), Policy: pol, Tokens: ids, Now: clock.Now}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: d, ids: ids, s: s, cfg: cfg, boot: boot, pol: pol, data: cfg.DataDir, roles: map[string]string{}}
	e.admin = e.login(boot.AdminUserID, testAdminPassword, boot.AdminProject)
	rs, _, err := ids.ListRoles(e.admin, identity.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		e.roles[r.Name] = r.ID
	}
	// The demo user's password is random after bootstrap; set a known one.
	users, _, err := ids.ListUsers(e.admin, identity.UserFilter{Name: identity.DemoUserName})
	if err != nil || len(users) != 1 {
		t.Fatalf("demo user: %v %v", users, err)
	}
	if _, err := ids.UpdateUser(e.admin, users[0].ID, identity.UserUpdate{Password: ptr(testDemoPassword)}); err != nil {
		t.Fatal(err)
	}
	ps, _, err := ids.ListProjects(e.admin, identity.ProjectFilter{Name: identity.DemoProjectName})
	if err != nil || len(ps) != 1 {
		t.Fatalf("demo project: %v %v", ps, err)
	}
	e.demoProject, e.demoUser = ps[0].ID, users[0].ID
	e.demo = e.login(users[0].ID, testDemoPassword, e.demoProject)
	return e
}

// token authenticates a user on a project and returns the token.
func (e *env) token(userID, password, projectID string) string {
	e.t.Helper()
	ti, err := e.ids.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserID: userID, Password: password},
		Scope:    identity.Scope{ProjectID: projectID},
	})
	if err != nil {
		e.t.Fatalf("login %s: %v", userID, err)
	}
	return ti.Token
}

// login returns a context carrying the user's credentials on the project,
// as the auth middleware would.
func (e *env) login(userID, password, projectID string) context.Context {
	e.t.Helper()
	c, err := e.ids.ValidateToken(context.Background(), e.token(userID, password, projectID))
	if err != nil {
		e.t.Fatal(err)
	}
	return auth.WithCredentials(context.Background(), c)
}

// tenant makes a project and a user holding role on it, and returns the
// project ID and the user's context.
func (e *env) tenant(name, role string) (string, context.Context) {
	e.t.Helper()
	p, err := e.ids.CreateProject(e.admin, identity.Project{Name: name, DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.ids.CreateUser(e.admin, identity.User{Name: name + "-user", DomainID: identity.DefaultDomainID, Enabled: true}, name+"-pw")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.ids.Grant(e.admin, identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.roles[role]}); err != nil {
		e.t.Fatal(err)
	}
	return p.ID, e.login(u.ID, name+"-pw", p.ID)
}

// create creates an image or fails the test.
func (e *env) create(ctx context.Context, img Image) *Image {
	e.t.Helper()
	out, err := e.s.CreateImage(ctx, img)
	if err != nil {
		e.t.Fatalf("create %+v: %v", img, err)
	}
	return out
}

// upload uploads the file at path into a new image of the given format.
func (e *env) uploadFile(ctx context.Context, name, diskFormat, path string) (*Image, error) {
	e.t.Helper()
	img := e.create(ctx, Image{Name: name, DiskFormat: diskFormat, ContainerFormat: "bare"})
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.s.Upload(ctx, img.ID, bytes.NewReader(b), int64(len(b)))
}

// storedFiles lists every file in the content store, temp and trash areas.
func (e *env) storedFiles() []string {
	e.t.Helper()
	var out []string
	for _, dir := range []string{e.s.contentDir, e.s.tmpDir, e.s.trashDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, en := range entries {
			out = append(out, filepath.Join(filepath.Base(dir), en.Name()))
		}
	}
	return out
}

// requireQemu skips when qemu-img is missing, unless in CI.
func requireQemu(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-img is required in CI (apt-get install qemu-utils)")
		}
		t.Skip("qemu-img not found: install qemu-utils to run the image upload tests")
	}
}

// qemuImg runs qemu-img in dir or fails the test.
func qemuImg(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("qemu-img", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
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
