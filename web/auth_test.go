package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/identity"
)

func TestLoginPageCreatesNoSession(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.get("/auth/login")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `type="password"`, `name="username"`, `value="Default"`, `name="csrf_token"`)
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, SessionCookie+"=") {
			t.Fatalf("login page set a session cookie: %s", sc)
		}
	}
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d sessions stored before login", n)
	}
	// The root redirects a visitor to the login page.
	r = c.get("/")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, "/auth/login") {
		t.Fatalf("/ redirects to %q", loc)
	}
}

func TestLoginSuccess(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.tryLogin("admin", testAdminPassword, "")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/project/overview" {
		t.Fatalf("Location %q", loc)
	}
	var cookie string
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, SessionCookie+"=") {
			cookie = sc
		}
	}
	if cookie == "" {
		t.Fatal("no session cookie after login")
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie lacks %s: %s", attr, cookie)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("cookie is Secure without TLS: %s", cookie)
	}
	// The stored key is a hash of the cookie value, never the value itself.
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE token = ?`, c.sessionCookie()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the session table holds the raw cookie value")
	}
	ov := c.get("/project/overview")
	wantStatus(t, ov, http.StatusOK)
	wantContains(t, ov, "admin", `id="nav-identity"`, `id="nav-admin"`, `<meta name="csrf-token"`)
	// A signed-in visitor of the login page goes straight on.
	lp := c.get("/auth/login")
	wantStatus(t, lp, http.StatusSeeOther)
}

func TestLoginSecureCookie(t *testing.T) {
	e := newEnv(t)
	ws, err := New(Config{Identity: e.id, DB: e.db, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if !ws.sm.Cookie.Secure || !ws.sm.Cookie.HttpOnly || ws.sm.Cookie.SameSite != http.SameSiteLaxMode || ws.sm.Cookie.Name != SessionCookie {
		t.Fatalf("cookie settings %+v", ws.sm.Cookie)
	}
}

func TestLoginFailure(t *testing.T) {
	e := newEnv(t)
	e.createMember("bob", "bob-Password-1", e.createProject("p1"))
	c := e.client()

	wrong := c.tryLogin("bob", "not-the-password", "")
	unknown := c.tryLogin("nobody-here", "whatever-password", "")
	for _, r := range []resp{wrong, unknown} {
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401:\n%s", r.status, r.body)
		}
		wantContains(t, r, `class="alert alert-error"`, `type="password"`, "Sign-in failed.")
	}
	msg := func(body string) string {
		i := strings.Index(body, `class="alert alert-error"`)
		j := strings.Index(body[i:], "</div>")
		return body[i : i+j]
	}
	if msg(wrong.body) != msg(unknown.body) {
		t.Fatalf("unknown user and wrong password answer differently:\n%s\n%s", msg(wrong.body), msg(unknown.body))
	}
	// The user name is kept, the password is not echoed.
	wantContains(t, wrong, `value="bob"`)
	wantNotContains(t, wrong, "not-the-password")

	empty := c.tryLogin("", "", "")
	wantStatus(t, empty, http.StatusUnprocessableEntity)
	wantContains(t, empty, "Enter your user name.", "Enter your password.")
	if c.sessionCookie() != "" {
		t.Fatal("failed logins created a session")
	}
}

func TestLoginRequiresFormToken(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	form := url.Values{"username": {"admin"}, "password": {testAdminPassword}, "domain": {"Default"}}
	r := c.do(http.MethodPost, "/auth/login", strings.NewReader(form.Encode()))
	wantStatus(t, r, http.StatusForbidden)
	form.Set("csrf_token", "forged-token-forged-token-forged-token")
	c.get("/auth/login") // has a cookie now, but not this value
	r = c.do(http.MethodPost, "/auth/login", strings.NewReader(form.Encode()))
	wantStatus(t, r, http.StatusForbidden)
}

func TestLoginNext(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		next string
		want string
	}{
		{"/identity-admin/users", "/identity-admin/users"},
		{"/identity-admin/projects?q=a", "/identity-admin/projects?q=a"},
		{"//evil.example/", "/project/overview"},
		{"/\\evil.example/", "/project/overview"},
		{"https://evil.example/", "/project/overview"},
		{"javascript:alert(1)", "/project/overview"},
		{"/\t/evil.example", "/project/overview"},
		{"/%0a/evil.example", "/%0a/evil.example"}, // escaped: stays a local path
		{"evil.example", "/project/overview"},
		{"/auth/logout", "/project/overview"},
	}
	for _, tc := range cases {
		t.Run(tc.next, func(t *testing.T) {
			c := e.client()
			r := c.tryLogin("admin", testAdminPassword, tc.next)
			wantStatus(t, r, http.StatusSeeOther)
			if got := r.header.Get("Location"); got != tc.want {
				t.Fatalf("next=%q redirected to %q, want %q", tc.next, got, tc.want)
			}
		})
	}
	// The login page keeps only a safe next.
	c := e.client()
	r := c.get("/auth/login?next=" + url.QueryEscape("//evil.example"))
	wantNotContains(t, r, "evil.example")
	// A visitor sent to the login page is brought back afterwards.
	r = c.get("/identity-admin/roles")
	wantStatus(t, r, http.StatusSeeOther)
	loc := r.header.Get("Location")
	u, _ := url.Parse(loc)
	if u.Path != "/auth/login" || u.Query().Get("next") != "/identity-admin/roles" {
		t.Fatalf("Location %q", loc)
	}
}

func TestRequireLogin(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.get("/project/overview")
	wantStatus(t, r, http.StatusSeeOther)
	r = c.get("/identity-admin/projects", hx)
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("HX-Redirect"); !strings.HasPrefix(got, "/auth/login") {
		t.Fatalf("HX-Redirect %q", got)
	}
	r = c.post("/identity-admin/projects", url.Values{"name": {"x"}})
	wantStatus(t, r, http.StatusSeeOther)
	if e.findProject("x") != nil {
		t.Fatal("an anonymous POST created a project")
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	// Read the session's token through the store, to check it is revoked.
	sess := e.web.sm
	ctx, err := sess.Load(context.Background(), c.sessionCookie())
	if err != nil {
		t.Fatal(err)
	}
	tok := sess.GetString(ctx, keyToken)
	if tok == "" {
		t.Fatal("no token in the session")
	}

	r := c.post("/auth/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/auth/login?reason=signed-out" {
		t.Fatalf("Location %q", loc)
	}
	if c.sessionCookie() != "" {
		t.Fatal("session cookie kept after logout")
	}
	if _, err := e.id.ValidateToken(context.Background(), tok); err == nil {
		t.Fatal("the session's token still validates after logout")
	}
	wantStatus(t, c.get("/project/overview"), http.StatusSeeOther)
	lp := c.get("/auth/login?reason=signed-out")
	wantContains(t, lp, "You have signed out.")
}

func TestSwitchProject(t *testing.T) {
	e := newEnv(t)
	alpha, beta := e.createProject("alpha"), e.createProject("beta")
	e.createProject("gamma") // not hers
	e.createMember("carol", "carol-Password-1", alpha, beta)
	c := e.client()
	c.login("carol", "carol-Password-1")

	ov := c.get("/project/overview")
	wantContains(t, ov, `<code id="overview-project-id">`+alpha.ID+`</code>`, ">alpha<", ">beta<")
	wantNotContains(t, ov, "gamma", `id="nav-identity"`)
	before := c.sessionCookie()

	r := c.post("/auth/switch-project", url.Values{"project_id": {beta.ID}})
	wantStatus(t, r, http.StatusSeeOther)
	if c.sessionCookie() == before {
		t.Fatal("session ID not renewed at project switch")
	}
	ov = c.get("/project/overview")
	wantStatus(t, ov, http.StatusOK)
	wantContains(t, ov, `<code id="overview-project-id">`+beta.ID+`</code>`, "Switched to project beta.")

	// A project she has no role on is refused and the session stays on beta.
	gamma := e.findProject("gamma")
	r = c.post("/auth/switch-project", url.Values{"project_id": {gamma.ID}})
	wantStatus(t, r, http.StatusSeeOther)
	ov = c.get("/project/overview")
	wantContains(t, ov, `<code id="overview-project-id">`+beta.ID+`</code>`, `alert-error`, "You cannot switch to that project")
}

func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	p := e.createProject("p1")
	dave := e.createMember("dave", "dave-Password-1", p)
	c := e.client()
	c.login("dave", "dave-Password-1")
	hc := e.client()
	hc.login("dave", "dave-Password-1")

	off := false
	if _, err := e.id.UpdateUser(e.adminCtx(), dave.ID, identity.UserUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	r := c.get("/project/overview")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); !strings.Contains(loc, "reason=expired") {
		t.Fatalf("Location %q", loc)
	}
	if c.sessionCookie() != "" {
		t.Fatal("session cookie kept after revocation")
	}
	lp := c.get("/auth/login?reason=expired")
	wantContains(t, lp, "Your session has ended.")

	r = hc.get("/project/overview", hx)
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("HX-Redirect"); !strings.Contains(got, "/auth/login") {
		t.Fatalf("HX-Redirect %q", got)
	}
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d sessions left after revocation", n)
	}
}

func TestNoProjectNoLogin(t *testing.T) {
	e := newEnv(t)
	e.createMember("eve", "eve-Password-1")
	c := e.client()
	r := c.tryLogin("eve", "eve-Password-1", "")
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "no role on any project")
	if c.sessionCookie() != "" {
		t.Fatal("a session was created for a user without projects")
	}
}
