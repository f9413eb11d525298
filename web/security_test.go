package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()

	missing := c.post("/identity-admin/projects", url.Values{"name": {"p-missing"}, "csrf_token": {""}})
	wantStatus(t, missing, http.StatusForbidden)
	wrong := c.post("/identity-admin/projects", url.Values{"name": {"p-wrong"}, "csrf_token": {"wrong" + c.csrf}})
	wantStatus(t, wrong, http.StatusForbidden)
	wrongHeader := c.post("/identity-admin/projects", url.Values{"name": {"p-header"}, "csrf_token": {""}},
		hx, header("X-CSRF-Token", "nope"))
	wantStatus(t, wrongHeader, http.StatusForbidden)
	logout := c.post("/auth/logout", url.Values{"csrf_token": {""}})
	wantStatus(t, logout, http.StatusForbidden)
	for _, name := range []string{"p-missing", "p-wrong", "p-header"} {
		if e.findProject(name) != nil {
			t.Fatalf("project %s created without a valid CSRF token", name)
		}
	}

	// The header alone (as app.js sends it) is enough.
	ok := c.post("/identity-admin/projects", url.Values{"name": {"p-ok"}, "enabled": {"true"}, "csrf_token": {""}},
		hx, header("X-CSRF-Token", c.csrf))
	wantStatus(t, ok, http.StatusNoContent)
	if e.findProject("p-ok") == nil {
		t.Fatal("project not created with the CSRF header")
	}
	// And so is the form field.
	ok = c.post("/identity-admin/projects", url.Values{"name": {"p-field"}, "enabled": {"true"}})
	wantStatus(t, ok, http.StatusSeeOther)

	// Every form on a page carries the token.
	page := c.get("/identity-admin/projects")
	forms := strings.Count(page.body, "<form")
	tokens := strings.Count(page.body, `name="csrf_token"`)
	gets := strings.Count(page.body, `method="get"`)
	if forms-gets != tokens {
		t.Fatalf("%d POST forms but %d CSRF fields", forms-gets, tokens)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	for name, o := range map[string]opt{
		"sec-fetch-site": header("Sec-Fetch-Site", "cross-site"),
		"origin":         header("Origin", "http://evil.example"),
	} {
		t.Run(name, func(t *testing.T) {
			r := c.post("/identity-admin/projects", url.Values{"name": {"x-" + name}, "enabled": {"true"}}, o)
			wantStatus(t, r, http.StatusForbidden)
			if e.findProject("x-"+name) != nil {
				t.Fatal("a cross-origin POST created a project")
			}
		})
	}
	// A cross-origin login attempt is refused too.
	r := c.do(http.MethodPost, "/auth/login", strings.NewReader("username=admin"), header("Sec-Fetch-Site", "cross-site"),
		header("Content-Type", "application/x-www-form-urlencoded"))
	wantStatus(t, r, http.StatusForbidden)
	// Same-origin requests pass.
	r = c.post("/identity-admin/projects", url.Values{"name": {"same"}, "enabled": {"true"}}, header("Sec-Fetch-Site", "same-origin"))
	wantStatus(t, r, http.StatusSeeOther)
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	anon := e.client()
	c := e.adminClient()
	for _, r := range []resp{anon.get("/auth/login"), c.get("/project/overview"), c.get("/identity-admin/users", hx), c.get("/nope")} {
		if got := r.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Fatalf("CSP %q", got)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "same-origin" {
			t.Fatalf("headers %v", r.header)
		}
		if !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
			t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	}
	want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	if contentSecurityPolicy != want {
		t.Fatalf("CSP is %q", contentSecurityPolicy)
	}
	// No inline script or style anywhere in a page.
	for _, path := range []string{"/project/overview", "/identity-admin/projects", "/identity-admin/users/new"} {
		r := c.get(path)
		low := strings.ToLower(r.body)
		if strings.Contains(low, "style=") || strings.Contains(low, "<style") || inlineHandler.MatchString(low) {
			t.Fatalf("%s has inline style or handlers", path)
		}
		for _, s := range strings.Split(low, "<script")[1:] {
			if !strings.HasPrefix(strings.TrimSpace(s), "src=") {
				t.Fatalf("%s has an inline script: <script%s", path, s[:min(len(s), 80)])
			}
		}
		unescaped := resp{body: html.UnescapeString(r.body)}
		wantContains(t, unescaped, `"selfRequestsOnly":true`, `"allowEval":false`, `"allowScriptTags":false`, `"includeIndicatorStyles":false`)
	}
}

var inlineHandler = regexp.MustCompile(`<[^>]*\son[a-z]+\s*=`)

func TestAPIsMountedWithoutDashboardMiddleware(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.get("/identity/v3")
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("Content-Security-Policy") != "" {
		t.Error("the API answers with the dashboard's CSP")
	}
	if r.header.Get("X-Openstack-Request-Id") == "" {
		t.Error("no request ID on the API")
	}
	for _, sc := range r.header.Values("Set-Cookie") {
		t.Errorf("the API set a cookie: %s", sc)
	}
	// An API POST is not subject to dashboard CSRF: a wrong password is a 401 from Keystone.
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"x"}}}}}`
	r = c.do(http.MethodPost, "/identity/v3/auth/tokens", strings.NewReader(body), header("Content-Type", "application/json"))
	wantStatus(t, r, http.StatusUnauthorized)
	// /identity-admin is the dashboard, not the API.
	r = c.get("/identity-admin/projects")
	wantStatus(t, r, http.StatusSeeOther)
}

func TestStatic(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, p := range []string{e.web.assets.CSS, e.web.assets.JS, e.web.assets.HTMX, e.web.assets.Favicon} {
		r := c.get(p)
		wantStatus(t, r, http.StatusOK)
		if !strings.Contains(r.header.Get("Cache-Control"), "max-age=31536000") {
			t.Fatalf("%s: Cache-Control %q", p, r.header.Get("Cache-Control"))
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no nosniff", p)
		}
	}
	for _, p := range []string{"/static/", "/static/css/", "/static/static.go", "/static/nope.js"} {
		if r := c.get(p); r.status != http.StatusNotFound {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
	js := c.get(e.web.assets.JS)
	wantContains(t, js, "htmx:configRequest", "X-CSRF-Token", "textContent")
}

func TestUserTextIsEscaped(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	evil := `<script>alert(1)</script>" hx-get="/x`
	r := c.post("/identity-admin/projects", url.Values{"name": {evil}, "description": {`<img src=x onerror=alert(2)>`}, "enabled": {"true"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	// The toast travels as ASCII-only, escaped JSON.
	trig := r.header.Get("HX-Trigger")
	if strings.ContainsAny(trig, "<>") || strings.ContainsFunc(trig, func(r rune) bool { return r > 127 }) {
		t.Fatalf("HX-Trigger not escaped: %s", trig)
	}
	list := c.get("/identity-admin/projects")
	wantNotContains(t, list, "<script>alert(1)", `<img src=x`, `" hx-get="/x`)
	wantContains(t, list, "&lt;script&gt;alert(1)&lt;/script&gt;")
}

func TestAsciiJSON(t *testing.T) {
	got := asciiJSON([]byte(`{"m":"Zoë 🚀 <b>"}`))
	if got != `{"m":"Zo\u00eb \ud83d\ude80 <b>"}` {
		t.Fatalf("%s", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"/":                 "/",
		"/a/b?c=d#e":        "/a/b?c=d#e",
		"//x":               "",
		"/\\x":              "",
		"/a\\b":             "",
		"http://x/":         "",
		"x":                 "",
		"/a b":              "",
		"/a\nb":             "",
		"/auth/login":       "",
		"/project/overview": "/project/overview",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
