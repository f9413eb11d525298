package identity

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestBootstrapIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if !e.boot.Created || e.boot.AdminPassword != testAdminPassword || e.boot.AdminUserID == "" || e.boot.AdminProject == "" {
		t.Fatalf("first bootstrap: %+v", e.boot)
	}
	count := func() map[string]int {
		m := map[string]int{}
		for _, tbl := range []string{"domains", "projects", "users", "roles", "implied_roles", "role_assignments", "regions", "services", "endpoints"} {
			var n int
			ok(t, e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+tbl).Scan(&n))
			m[tbl] = n
		}
		return m
	}
	before := count()
	if before["endpoints"] != 9 || before["roles"] != len(bootstrapRoles) || before["implied_roles"] != 3 {
		t.Fatalf("first bootstrap created %v", before)
	}
	// A second start with another password and a moved public URL.
	res, err := e.s.Bootstrap(ctx, BootstrapConfig{
		AdminPassword: "another-password",
		PublicURL:     "https://cloud.example.com",
		Services: []ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
			{Type: "object-store", Name: "swift", Path: "/object-store/v1/AUTH_$(project_id)s"},
		},
	})
	ok(t, err)
	if res.Created || res.AdminPassword != "" || res.AdminUserID != e.boot.AdminUserID || res.AdminProject != e.boot.AdminProject {
		t.Fatalf("second bootstrap: %+v", res)
	}
	if after := count(); !mapsEqual(before, after) {
		t.Fatalf("second bootstrap changed counts: %v -> %v", before, after)
	}
	// The password is untouched, the endpoints follow the new URL.
	if _, err := e.tryLogin(PasswordAuth{UserID: res.AdminUserID, Password: "another-password"}, Scope{}); err == nil {
		t.Fatal("second bootstrap changed the admin password")
	}
	tok := e.login(t, PasswordAuth{UserID: res.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: res.AdminProject})
	for _, ce := range tok.Catalog {
		for _, ep := range ce.Endpoints {
			if !strings.HasPrefix(ep.URL, "https://cloud.example.com/") {
				t.Fatalf("endpoint not updated: %+v", ep)
			}
			if ce.Service.Type == "object-store" && !strings.HasSuffix(ep.URL, "AUTH_"+res.AdminProject) {
				t.Fatalf("project ID not substituted: %s", ep.URL)
			}
		}
	}
	if len(tok.Catalog) != 3 {
		t.Fatalf("catalog has %d services", len(tok.Catalog))
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBootstrapGeneratesPassword(t *testing.T) {
	// Bootstrapping with no admin user and no password generates one.
	e := newEnv(t)
	d := e.db
	_, err := d.ExecContext(context.Background(), `DELETE FROM role_assignments`)
	ok(t, err)
	_, err = d.ExecContext(context.Background(), `DELETE FROM users`)
	ok(t, err)
	res, err := e.s.Bootstrap(context.Background(), BootstrapConfig{PublicURL: "http://x:1"})
	ok(t, err)
	if !res.Created || len(res.AdminPassword) != 24 {
		t.Fatalf("bootstrap without password: %+v", res)
	}
	e.login(t, PasswordAuth{UserName: "admin", DomainName: "Default", Password: res.AdminPassword}, Scope{ProjectID: res.AdminProject})
}

func TestPasswordLogin(t *testing.T) {
	e := newEnv(t)
	adminID, adminProject := e.boot.AdminUserID, e.boot.AdminProject
	dom := e.project(t, "dom-scope") // a project to show default-project scoping
	u := e.user(t, "scoper", "scoper-pw", dom.ID, "member")
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetDomain, TargetID: DefaultDomainID, RoleID: e.roleID(t, "reader")})
	_, err := e.s.UpdateUser(e.admin, u.ID, UserUpdate{DefaultProjectID: &dom.ID})
	ok(t, err)

	cases := []struct {
		name      string
		pa        PasswordAuth
		sc        Scope
		project   string
		domain    string
		system    bool
		wantRoles []string
	}{
		{"by id, project by id", PasswordAuth{UserID: adminID}, Scope{ProjectID: adminProject}, adminProject, "", false, []string{"admin", "member", "reader"}},
		{"by name and domain id", PasswordAuth{UserName: "admin", DomainID: "default"}, Scope{ProjectName: "admin", ProjectDomainID: "default"}, adminProject, "", false, []string{"admin", "member", "reader"}},
		{"by name and domain name", PasswordAuth{UserName: "admin", DomainName: "Default"}, Scope{ProjectName: "admin", ProjectDomainName: "Default"}, adminProject, "", false, []string{"admin", "member", "reader"}},
		{"system scope", PasswordAuth{UserID: adminID}, Scope{System: true}, "", "", true, []string{"admin", "member", "reader"}},
		{"unscoped", PasswordAuth{UserID: adminID}, Scope{}, "", "", false, nil},
		{"default project", PasswordAuth{UserID: u.ID}, Scope{}, dom.ID, "", false, []string{"member", "reader"}},
		{"forced unscoped", PasswordAuth{UserID: u.ID}, Scope{Unscoped: true}, "", "", false, nil},
		{"domain scope", PasswordAuth{UserID: u.ID}, Scope{DomainID: "default"}, "", "default", false, []string{"reader"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pa := c.pa
			pa.Password = testAdminPassword
			if pa.UserID == u.ID {
				pa.Password = "scoper-pw"
			}
			tok := e.login(t, pa, c.sc)
			cr := tok.Credentials
			if cr.ProjectID != c.project || cr.DomainID != c.domain || cr.System != c.system {
				t.Fatalf("scope: project %q domain %q system %v", cr.ProjectID, cr.DomainID, cr.System)
			}
			got := slices.Sorted(slices.Values(cr.Roles))
			if !slices.Equal(got, c.wantRoles) && !(len(got) == 0 && len(c.wantRoles) == 0) {
				t.Fatalf("roles %v, want %v", got, c.wantRoles)
			}
			if len(tok.AuditIDs) != 1 || len(tok.AuditIDs[0]) != 22 {
				t.Fatalf("audit IDs %v", tok.AuditIDs)
			}
			if want := e.clock.Now().Add(time.Hour); !cr.ExpiresAt.Equal(want) && cr.ExpiresAt.Sub(want) > time.Microsecond {
				t.Fatalf("expires %v, want %v", cr.ExpiresAt, want)
			}
			if c.project != "" && (tok.Project == nil || tok.Project.ID != c.project || tok.ProjectDom == nil || len(tok.Catalog) == 0) {
				t.Fatalf("token info: %+v", tok)
			}
			if c.project == "" && c.domain == "" && !c.system && len(tok.Catalog) != 0 {
				t.Fatal("unscoped token has a catalog")
			}
			v, err := e.s.ValidateToken(context.Background(), tok.Token)
			ok(t, err)
			if v.UserID != tok.User.ID || v.UserName != tok.User.Name || v.ProjectID != c.project || v.Token != tok.Token {
				t.Fatalf("validated %+v", v)
			}
		})
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	p := e.project(t, "p1")
	u := e.user(t, "alice", "alice-pw", p.ID, "member")
	noRole := e.user(t, "norole", "norole-pw", "", "")
	off := e.user(t, "off", "off-pw", p.ID, "member")
	_, err := e.s.UpdateUser(e.admin, off.ID, UserUpdate{Enabled: ptr(false)})
	ok(t, err)
	disabledProject := e.project(t, "p-off")
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: disabledProject.ID, RoleID: e.roleID(t, "member")})
	_, err = e.s.UpdateProject(e.admin, disabledProject.ID, ProjectUpdate{Enabled: ptr(false)})
	ok(t, err)

	cases := []struct {
		name string
		pa   PasswordAuth
		sc   Scope
	}{
		{"wrong password", PasswordAuth{UserID: u.ID, Password: "nope"}, Scope{}},
		{"unknown user id", PasswordAuth{UserID: newID(), Password: "alice-pw"}, Scope{}},
		{"unknown user name", PasswordAuth{UserName: "bob", DomainID: "default", Password: "alice-pw"}, Scope{}},
		{"unknown domain", PasswordAuth{UserName: "alice", DomainName: "Nope", Password: "alice-pw"}, Scope{}},
		{"empty password", PasswordAuth{UserID: u.ID, Password: ""}, Scope{}},
		{"over-long password", PasswordAuth{UserID: u.ID, Password: strings.Repeat("x", 100)}, Scope{}},
		{"disabled user", PasswordAuth{UserID: off.ID, Password: "off-pw"}, Scope{}},
		{"no role on project", PasswordAuth{UserID: noRole.ID, Password: "norole-pw"}, Scope{ProjectID: p.ID}},
		{"unknown project", PasswordAuth{UserID: u.ID, Password: "alice-pw"}, Scope{ProjectID: newID()}},
		{"disabled project", PasswordAuth{UserID: u.ID, Password: "alice-pw"}, Scope{ProjectID: disabledProject.ID}},
		{"no system role", PasswordAuth{UserID: u.ID, Password: "alice-pw"}, Scope{System: true}},
		{"no domain role", PasswordAuth{UserID: u.ID, Password: "alice-pw"}, Scope{DomainID: "default"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.tryLogin(c.pa, c.sc)
			wantKind(t, err, fault.Unauthorized)
			if fault.Message(err) != msgUnauthorized {
				t.Fatalf("message %q", fault.Message(err))
			}
		})
	}
}

func TestDisabledDomainCannotLogin(t *testing.T) {
	e := newEnv(t)
	d, err := e.s.CreateDomain(e.admin, Domain{Name: "other", Enabled: true})
	ok(t, err)
	p, err := e.s.CreateProject(e.admin, Project{Name: "op", DomainID: d.ID, Enabled: true})
	ok(t, err)
	u, err := e.s.CreateUser(e.admin, User{Name: "ou", DomainID: d.ID, Enabled: true}, "ou-pw")
	ok(t, err)
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")})
	tok := e.login(t, PasswordAuth{UserName: "ou", DomainName: "other", Password: "ou-pw"}, Scope{ProjectID: p.ID})
	_, err = e.s.UpdateDomain(e.admin, d.ID, DomainUpdate{Enabled: ptr(false)})
	ok(t, err)
	if e.valid(tok) {
		t.Fatal("token survived disabling its domain")
	}
	_, err = e.tryLogin(PasswordAuth{UserID: u.ID, Password: "ou-pw"}, Scope{})
	wantKind(t, err, fault.Unauthorized)
	// The admin project's token is unaffected.
	if _, err := e.s.GetProject(e.admin, e.boot.AdminProject); err != nil {
		t.Fatal(err)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginMaxFailures = 3; c.LoginWindow = time.Minute })
	p := e.project(t, "p")
	u := e.user(t, "tina", "tina-pw", p.ID, "member")
	login := func(pw, source string) error {
		_, err := e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodPassword},
			Password: &PasswordAuth{UserName: "tina", DomainID: "default", Password: pw}, Source: source})
		return err
	}
	// A success resets the user's counter.
	for range 2 {
		wantKind(t, login("bad", "10.0.0.1"), fault.Unauthorized)
	}
	ok(t, login("tina-pw", "10.0.0.9"))
	for range 3 {
		wantKind(t, login("bad", "10.0.0.2"), fault.Unauthorized)
	}
	// Locked: the right password from a fresh source is refused, with the same answer.
	err := login("tina-pw", "10.0.0.3")
	wantKind(t, err, fault.Unauthorized)
	if fault.Message(err) != msgUnauthorized {
		t.Fatal(fault.Message(err))
	}
	// By ID it is the same counter.
	_, err = e.tryLogin(PasswordAuth{UserID: u.ID, Password: "tina-pw"}, Scope{})
	wantKind(t, err, fault.Unauthorized)
	e.clock.Advance(time.Minute + time.Second)
	ok(t, login("tina-pw", "10.0.0.3"))

	// Per source: one address failing against several names is stopped too.
	for i := range 3 {
		_, err := e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodPassword},
			Password: &PasswordAuth{UserName: "ghost" + string(rune('a'+i)), DomainID: "default", Password: "x"}, Source: "10.9.9.9"})
		wantKind(t, err, fault.Unauthorized)
	}
	wantKind(t, login("tina-pw", "10.9.9.9"), fault.Unauthorized)
	ok(t, login("tina-pw", "10.9.9.8"))
}

func TestRescope(t *testing.T) {
	e := newEnv(t)
	p1 := e.project(t, "one")
	p2 := e.project(t, "two")
	u := e.user(t, "ross", "ross-pw", p1.ID, "member")
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p2.ID, RoleID: e.roleID(t, "reader")})
	unscoped := e.login(t, PasswordAuth{UserID: u.ID, Password: "ross-pw"}, Scope{})
	e.clock.Advance(10 * time.Minute)

	rescope := func(tok string, sc Scope) (*TokenInfo, error) {
		return e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodToken}, Token: tok, Scope: sc})
	}
	t1, err := rescope(unscoped.Token, Scope{ProjectID: p1.ID})
	ok(t, err)
	if !t1.Credentials.ExpiresAt.Equal(unscoped.Credentials.ExpiresAt) {
		t.Fatalf("rescope moved expiry: %v -> %v", unscoped.Credentials.ExpiresAt, t1.Credentials.ExpiresAt)
	}
	if len(t1.AuditIDs) != 2 || t1.AuditIDs[1] != unscoped.AuditIDs[0] {
		t.Fatalf("audit chain %v from %v", t1.AuditIDs, unscoped.AuditIDs)
	}
	if !slices.Contains(t1.Credentials.Methods, MethodToken) || !slices.Contains(t1.Credentials.Methods, MethodPassword) {
		t.Fatalf("methods %v", t1.Credentials.Methods)
	}
	// Project to project, as the dashboard's switcher does; the chain keeps its origin.
	t2, err := rescope(t1.Token, Scope{ProjectID: p2.ID})
	ok(t, err)
	if t2.Credentials.ProjectID != p2.ID || !slices.Equal(t2.Credentials.Roles, []string{"reader"}) ||
		t2.AuditIDs[1] != unscoped.AuditIDs[0] || !t2.Credentials.ExpiresAt.Equal(unscoped.Credentials.ExpiresAt) {
		t.Fatalf("second rescope: %+v %v", t2.Credentials, t2.AuditIDs)
	}
	// No role on the target, a garbage or an expired token: 401.
	_, err = rescope(t1.Token, Scope{ProjectID: e.boot.AdminProject})
	wantKind(t, err, fault.Unauthorized)
	_, err = rescope("garbage", Scope{ProjectID: p1.ID})
	wantKind(t, err, fault.Unauthorized)
	e.clock.Advance(51 * time.Minute)
	_, err = rescope(unscoped.Token, Scope{ProjectID: p1.ID})
	wantKind(t, err, fault.Unauthorized)
	if e.valid(t1) || e.valid(t2) {
		t.Fatal("rescoped tokens outlived their origin")
	}
}

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TokenTTL = 5 * time.Minute })
	tok := e.login(t, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{})
	exp := tok.Credentials.ExpiresAt
	if exp.Sub(e.clock.Now()) < 5*time.Minute || exp.Sub(e.clock.Now()) > 5*time.Minute+time.Millisecond {
		t.Fatalf("expires at %v, now %v", exp, e.clock.Now())
	}
	e.clock.Set(exp.Add(-time.Nanosecond))
	if !e.valid(tok) {
		t.Fatal("token expired early")
	}
	e.clock.Set(exp)
	_, err := e.s.ValidateToken(context.Background(), tok.Token)
	wantKind(t, err, fault.Unauthorized)
	if fault.Message(err) != msgUnauthorized {
		t.Fatal(fault.Message(err))
	}
}

func TestBadAuthRequests(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		r    AuthRequest
		kind fault.Kind
	}{
		{"no methods", AuthRequest{}, fault.Invalid},
		{"unknown method", AuthRequest{Methods: []string{"totp"}}, fault.Unauthorized},
		{"mixed methods", AuthRequest{Methods: []string{MethodPassword, MethodToken}}, fault.Unauthorized},
		{"password missing", AuthRequest{Methods: []string{MethodPassword}}, fault.Invalid},
		{"no user", AuthRequest{Methods: []string{MethodPassword}, Password: &PasswordAuth{Password: "x"}}, fault.Invalid},
		{"name without domain", AuthRequest{Methods: []string{MethodPassword}, Password: &PasswordAuth{UserName: "admin", Password: "x"}}, fault.Invalid},
		{"two scopes", AuthRequest{Methods: []string{MethodPassword},
			Password: &PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword},
			Scope:    Scope{ProjectID: e.boot.AdminProject, System: true}}, fault.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.s.Authenticate(context.Background(), c.r)
			wantKind(t, err, c.kind)
		})
	}
}

func TestShowAndRevokeToken(t *testing.T) {
	e := newEnv(t)
	_, u, tok, ctx := e.member(t, "sam", "member")
	_, _, other, _ := e.member(t, "olga", "member")

	ti, err := e.s.ShowToken(ctx, tok.Token)
	ok(t, err)
	if ti.User.ID != u.ID || ti.Project == nil || len(ti.Catalog) == 0 {
		t.Fatalf("show own token: %+v", ti)
	}
	_, err = e.s.ShowToken(ctx, other.Token)
	wantKind(t, err, fault.Forbidden)
	_, err = e.s.ShowToken(e.admin, other.Token)
	ok(t, err)
	_, err = e.s.ShowToken(e.admin, "not-a-token-at-all")
	wantKind(t, err, fault.NotFound)
	_, err = e.s.ShowToken(context.Background(), tok.Token)
	wantKind(t, err, fault.Unauthorized)
	ok(t, e.s.CheckToken(ctx, tok.Token))

	wantKind(t, e.s.RevokeToken(ctx, other.Token), fault.Forbidden)
	second := e.login(t, PasswordAuth{UserID: u.ID, Password: "sam-password"}, Scope{})
	ok(t, e.s.RevokeToken(ctx, tok.Token))
	if e.valid(tok) {
		t.Fatal("revoked token still valid")
	}
	if !e.valid(second) || !e.valid(other) {
		t.Fatal("revoking one token revoked others")
	}
	_, err = e.s.ShowToken(e.admin, tok.Token)
	wantKind(t, err, fault.NotFound)
}

func TestAuthScopesLists(t *testing.T) {
	e := newEnv(t)
	p, u, _, ctx := e.member(t, "lee", "member")
	off := e.project(t, "lee-off")
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: off.ID, RoleID: e.roleID(t, "reader")})
	_, err := e.s.UpdateProject(e.admin, off.ID, ProjectUpdate{Enabled: ptr(false)})
	ok(t, err)
	ps, err := e.s.AuthProjects(ctx)
	ok(t, err)
	if len(ps) != 1 || ps[0].ID != p.ID {
		t.Fatalf("auth projects %+v", ps)
	}
	ps, err = e.s.ListUserProjects(ctx, u.ID)
	ok(t, err)
	if len(ps) != 2 {
		t.Fatalf("user projects %+v", ps)
	}
	ds, err := e.s.AuthDomains(ctx)
	ok(t, err)
	if len(ds) != 0 {
		t.Fatalf("auth domains %+v", ds)
	}
	sys, err := e.s.AuthSystem(ctx)
	ok(t, err)
	if sys {
		t.Fatal("member may scope to the system")
	}
	sys, err = e.s.AuthSystem(e.admin)
	ok(t, err)
	if !sys {
		t.Fatal("admin may not scope to the system")
	}
	cat, err := e.s.Catalog(ctx)
	ok(t, err)
	if len(cat) != 3 {
		t.Fatalf("catalog %+v", cat)
	}
	for _, f := range []func(context.Context) error{
		func(c context.Context) error { _, err := e.s.AuthProjects(c); return err },
		func(c context.Context) error { _, err := e.s.AuthDomains(c); return err },
		func(c context.Context) error { _, err := e.s.Catalog(c); return err },
		func(c context.Context) error { _, _, err := e.s.ListProjects(c, ProjectFilter{}); return err },
		func(c context.Context) error { _, err := e.s.GetUser(c, u.ID); return err },
	} {
		wantKind(t, f(context.Background()), fault.Unauthorized)
	}
}
