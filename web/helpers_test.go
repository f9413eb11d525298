package web

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const testAdminPassword = "admin-Secret-1"

// env is a web server over a real identity service on a temporary SQLite file.
type env struct {
	t      testing.TB
	db     *db.DB
	id     *identity.Service
	web    *Server
	srv    *httptest.Server
	boot   *identity.BootstrapResult
	member string // ID of the "member" role
}

// newTestBase is what every web test environment starts from: a migrated
// SQLite file, a policy engine with identity's rules and those given, and
// the identity service bootstrapped with testAdminPassword, advertising
// publicURL.
func newTestBase(t testing.TB, publicURL string, rules ...[]policy.Rule) (*db.DB, *policy.Engine, *identity.Service, *identity.BootstrapResult) {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	pol := policy.New(policy.BaseRules())
	pol.Register(identity.PolicyRules()...)
	for _, r := range rules {
		pol.Register(r...)
	}
	ids, err := identity.New(ctx, d, identity.Config{Policy: pol, BcryptCost: 4, LoginMaxFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: testAdminPassword, PublicURL: publicURL,
		Services: []identity.ServiceSpec{{Type: "identity", Name: "keystone", Path: "/identity"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, pol, ids, boot
}

func newEnv(t testing.TB) *env {
	t.Helper()
	d, _, svc, boot := newTestBase(t, "http://test")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws, err := New(Config{
		Identity: svc,
		DB:       d,
		APIs:     []Mount{{Prefix: "/identity", Handler: identity.NewAPI(svc, "")}},
		Logger:   log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: d, id: svc, web: ws, srv: srv, boot: boot}
	e.member = e.roleID("member")
	return e
}

// adminCtx carries the bootstrap admin's project-scoped credentials, for
// setting up fixtures through the service directly.
func (e *env) adminCtx() context.Context {
	e.t.Helper()
	ti, err := e.id.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserName: "admin", DomainName: "Default", Password: testAdminPassword},
		Scope:    identity.Scope{ProjectID: e.boot.AdminProject},
	})
	if err != nil {
		e.t.Fatalf("admin authenticate: %v", err)
	}
	return auth.WithCredentials(context.Background(), &ti.Credentials)
}

// roleID finds a role by name, creating it if bootstrap did not.
func (e *env) roleID(name string) string {
	e.t.Helper()
	ctx := e.adminCtx()
	rs, _, err := e.id.ListRoles(ctx, identity.RoleFilter{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r.ID
		}
	}
	r, err := e.id.CreateRole(ctx, identity.Role{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ID
}

func (e *env) createProject(name string) *identity.Project {
	e.t.Helper()
	p, err := e.id.CreateProject(e.adminCtx(), identity.Project{Name: name, DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		e.t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

// createMember creates an enabled user with the member role on each project.
// createReader makes a user whose only role is reader on p.
func (e *env) createReader(name, password string, p *identity.Project) *identity.User {
	e.t.Helper()
	u, err := e.id.CreateUser(e.adminCtx(), identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true, DefaultProjectID: p.ID}, password)
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	if err := e.id.Grant(e.adminCtx(), identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.roleID("reader")}); err != nil {
		e.t.Fatalf("grant reader: %v", err)
	}
	return u
}

func (e *env) createMember(name, password string, projects ...*identity.Project) *identity.User {
	e.t.Helper()
	ctx := e.adminCtx()
	def := ""
	if len(projects) > 0 {
		def = projects[0].ID
	}
	u, err := e.id.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true, DefaultProjectID: def}, password)
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	for _, p := range projects {
		if err := e.id.Grant(ctx, identity.Assignment{
			ActorType: identity.ActorUser, ActorID: u.ID, TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.member,
		}); err != nil {
			e.t.Fatalf("grant member: %v", err)
		}
	}
	return u
}

func (e *env) findProject(name string) *identity.Project {
	e.t.Helper()
	ps, _, err := e.id.ListProjects(e.adminCtx(), identity.ProjectFilter{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

// client is a browser stand-in: a cookie jar, no automatic redirects, and
// the CSRF token of the last page it saw.
type client struct {
	t    testing.TB
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, e: e, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type resp struct {
	status int
	header http.Header
	body   string
}

// opt adjusts a request.
type opt func(*http.Request)

// hx marks the request as htmx's.
func hx(r *http.Request) {
	r.Header.Set("HX-Request", "true")
	r.Header.Set("HX-Current-URL", "http://"+r.Host+"/identity-admin/projects")
}

// hxTargetModal is an htmx request loading into the dialog.
func hxTargetModal(r *http.Request) {
	hx(r)
	r.Header.Set("HX-Target", "modal-body")
}

func header(k, v string) opt { return func(r *http.Request) { r.Header.Set(k, v) } }

var (
	metaCSRF  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
	fieldCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

func (c *client) do(method, path string, body io.Reader, opts ...opt) resp {
	c.t.Helper()
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := metaCSRF.FindSubmatch(b); m != nil {
		c.csrf = html.UnescapeString(string(m[1]))
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string, opts ...opt) resp {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, opts...)
}

// post sends a form, adding the session's CSRF token unless the form has one.
func (c *client) post(path string, form url.Values, opts ...opt) resp {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok && c.csrf != "" {
		form.Set("csrf_token", c.csrf)
	}
	return c.do(http.MethodPost, path, strings.NewReader(form.Encode()), opts...)
}

// login signs in through the form and fails the test unless it succeeds.
func (c *client) login(user, password string) resp {
	c.t.Helper()
	r := c.tryLogin(user, password, "")
	if r.status != http.StatusSeeOther {
		c.t.Fatalf("login %s: status %d, body:\n%s", user, r.status, r.body)
	}
	// Load a page to learn the session's CSRF token.
	if p := c.get("/project/overview"); p.status != http.StatusOK {
		c.t.Fatalf("overview after login: %d\n%s", p.status, p.body)
	}
	return r
}

func (c *client) tryLogin(user, password, next string) resp {
	c.t.Helper()
	page := c.get("/auth/login")
	m := fieldCSRF.FindStringSubmatch(page.body)
	if m == nil {
		c.t.Fatalf("login page has no csrf_token field:\n%s", page.body)
	}
	form := url.Values{"username": {user}, "password": {password}, "domain": {"Default"}, "csrf_token": {html.UnescapeString(m[1])}}
	if next != "" {
		form.Set("next", next)
	}
	return c.do(http.MethodPost, "/auth/login", strings.NewReader(form.Encode()))
}

func (c *client) sessionCookie() string {
	u, _ := url.Parse(c.e.srv.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == SessionCookie {
			return ck.Value
		}
	}
	return ""
}

// adminClient is a client signed in as the bootstrap admin.
func (e *env) adminClient() *client {
	c := e.client()
	c.login("admin", testAdminPassword)
	return c
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, want, r.body)
	}
}

func wantContains(t *testing.T, r resp, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.body, s) {
			t.Fatalf("body lacks %q:\n%s", s, r.body)
		}
	}
}

func wantNotContains(t *testing.T, r resp, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(r.body, s) {
			t.Fatalf("body should not contain %q:\n%s", s, r.body)
		}
	}
}

// isFullPage tells a full document from an htmx fragment.
func isFullPage(body string) bool { return strings.Contains(strings.ToLower(body), "<!doctype html>") }
