package identity_test

// Tests of the Keystone v3 REST API through httptest against a real
// identity service on a temporary SQLite file. Helpers are prefixed "api"
// so they never collide with the service's own tests in this package.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const apiAdminPassword = "s3cret-admin-pass"

// apiEnv is a running identity API with a bootstrapped admin.
type apiEnv struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *identity.Service
	base    string // <srv.URL>/identity
	boot    *identity.BootstrapResult
	admin   string // admin's project-scoped token
	roleIDs map[string]string
}

type apiEnvOptions struct {
	cfg       identity.Config
	stripMode bool // mount with http.StripPrefix and an empty baseURL
}

func newAPIEnv(t *testing.T) *apiEnv { return newAPIEnvWith(t, apiEnvOptions{}) }

func newAPIEnvWith(t *testing.T, o apiEnvOptions) *apiEnv {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(t.TempDir() + "/nimbus.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	pe := policy.New(policy.BaseRules())
	pe.Register(identity.PolicyRules()...)
	cfg := o.cfg
	cfg.Policy = pe
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 4
	}
	if cfg.LoginMaxFailures == 0 {
		cfg.LoginMaxFailures = -1
	}
	svc, err := identity.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}

	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	boot, err := svc.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: apiAdminPassword,
		PublicURL:     srv.URL,
		Services: []identity.ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.stripMode {
		h = http.StripPrefix("/identity", identity.NewAPI(svc, ""))
	} else {
		r := chi.NewRouter()
		r.Mount("/identity", identity.NewAPI(svc, srv.URL+"/identity"))
		h = r
	}
	e := &apiEnv{t: t, srv: srv, svc: svc, base: srv.URL + "/identity", boot: boot, roleIDs: map[string]string{}}
	e.admin = e.tokenByID(boot.AdminUserID, apiAdminPassword, boot.AdminProject)
	res := e.do("GET", "/v3/roles", e.admin, nil)
	res.want(200)
	for _, ro := range res.list("roles") {
		e.roleIDs[ro["name"].(string)] = ro["id"].(string)
	}
	return e
}

// apiResp is a response with its decoded JSON body.
type apiResp struct {
	t      *testing.T
	status int
	header http.Header
	raw    []byte
	body   map[string]any
	req    string
}

func (r *apiResp) want(status int) *apiResp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.status, status, r.raw)
	}
	return r
}

// wantFault checks a Keystone error body with the given status.
func (r *apiResp) wantFault(status int) *apiResp {
	r.t.Helper()
	r.want(status)
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		r.t.Fatalf("%s: no Keystone error body: %s", r.req, r.raw)
	}
	if int(e["code"].(float64)) != status || e["title"] == "" || e["message"] == "" {
		r.t.Fatalf("%s: malformed error body: %s", r.req, r.raw)
	}
	return r
}

func (r *apiResp) obj(key string) map[string]any {
	r.t.Helper()
	m, ok := r.body[key].(map[string]any)
	if !ok {
		r.t.Fatalf("%s: no object %q in %s", r.req, key, r.raw)
	}
	return m
}

func (r *apiResp) list(key string) []map[string]any {
	r.t.Helper()
	arr, ok := r.body[key].([]any)
	if !ok {
		r.t.Fatalf("%s: no list %q in %s", r.req, key, r.raw)
	}
	out := make([]map[string]any, 0, len(arr))
	for _, x := range arr {
		out = append(out, x.(map[string]any))
	}
	return out
}

func (r *apiResp) ids(key string) []string {
	var out []string
	for _, m := range r.list(key) {
		out = append(out, m["id"].(string))
	}
	return out
}

// do sends a request to the API; path is relative to <srv>/identity. body
// is JSON-encoded unless it is a string, which is sent as is.
func (e *apiEnv) do(method, path, token string, body any, headers ...string) *apiResp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &apiResp{t: e.t, status: res.StatusCode, header: res.Header, raw: raw, req: method + " " + path}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

func apiPasswordAuth(user map[string]any, password string, scope any) map[string]any {
	user["password"] = password
	a := map[string]any{"identity": map[string]any{
		"methods":  []string{"password"},
		"password": map[string]any{"user": user},
	}}
	if scope != nil {
		a["scope"] = scope
	}
	return map[string]any{"auth": a}
}

// issue authenticates and returns the response (201 expected by callers).
func (e *apiEnv) issue(body any, query string) *apiResp {
	e.t.Helper()
	return e.do("POST", "/v3/auth/tokens"+query, "", body)
}

// tokenByID returns a project-scoped token for a user.
func (e *apiEnv) tokenByID(userID, password, projectID string) string {
	e.t.Helper()
	scope := any(nil)
	if projectID != "" {
		scope = map[string]any{"project": map[string]any{"id": projectID}}
	}
	res := e.issue(apiPasswordAuth(map[string]any{"id": userID}, password, scope), "").want(201)
	tok := res.header.Get("X-Subject-Token")
	if tok == "" {
		e.t.Fatal("no X-Subject-Token")
	}
	return tok
}

// createProject creates a project as admin and returns its ID.
func (e *apiEnv) createProject(name string, extra map[string]any) string {
	e.t.Helper()
	p := map[string]any{"name": name, "domain_id": "default", "enabled": true}
	for k, v := range extra {
		p[k] = v
	}
	return e.do("POST", "/v3/projects", e.admin, map[string]any{"project": p}).want(201).obj("project")["id"].(string)
}

// createUser creates a user as admin and returns its ID.
func (e *apiEnv) createUser(name, password string) string {
	e.t.Helper()
	u := map[string]any{"name": name, "domain_id": "default", "enabled": true, "password": password}
	return e.do("POST", "/v3/users", e.admin, map[string]any{"user": u}).want(201).obj("user")["id"].(string)
}

// grant gives a user a role on a project as admin.
func (e *apiEnv) grant(projectID, userID, role string) {
	e.t.Helper()
	rid := e.roleIDs[role]
	if rid == "" {
		e.t.Fatalf("no role %q after bootstrap (have %v)", role, e.roleIDs)
	}
	e.do("PUT", "/v3/projects/"+projectID+"/users/"+userID+"/roles/"+rid, e.admin, nil).want(204)
}

// member creates a project and a user holding the member role on it, and
// returns the project, the user and the user's token there.
func (e *apiEnv) member(name string) (projectID, userID, token string) {
	e.t.Helper()
	projectID = e.createProject(name+"-project", nil)
	userID = e.createUser(name, name+"-password")
	e.grant(projectID, userID, "member")
	return projectID, userID, e.tokenByID(userID, name+"-password", projectID)
}

var apiTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// --- version discovery ---

func TestAPIVersionDiscovery(t *testing.T) {
	e := newAPIEnv(t)
	for _, path := range []string{"", "/"} {
		res := e.do("GET", path, "", nil).want(http.StatusMultipleChoices)
		vals := res.obj("versions")["values"].([]any)
		if len(vals) != 1 {
			t.Fatalf("versions: %s", res.raw)
		}
		apiCheckVersion(t, e, vals[0].(map[string]any))
	}
	for _, path := range []string{"/v3", "/v3/"} {
		res := e.do("GET", path, "", nil).want(200)
		apiCheckVersion(t, e, res.obj("version"))
	}
	if res := e.do("GET", "/v3", "", nil); res.header.Get("X-Openstack-Request-Id") == "" {
		t.Error("no X-Openstack-Request-Id")
	}
}

func apiCheckVersion(t *testing.T, e *apiEnv, v map[string]any) {
	t.Helper()
	if v["id"] != "v3.14" || v["status"] != "stable" || v["updated"] == "" {
		t.Errorf("version doc %v", v)
	}
	links := v["links"].([]any)
	l := links[0].(map[string]any)
	if l["rel"] != "self" || l["href"] != e.base+"/v3/" {
		t.Errorf("version links %v", links)
	}
	mt := v["media-types"].([]any)[0].(map[string]any)
	if mt["base"] != "application/json" || mt["type"] != "application/vnd.openstack.identity-v3+json" {
		t.Errorf("media-types %v", mt)
	}
}

// A mount through http.StripPrefix with no configured base URL derives
// links from the request.
func TestAPIDerivedBaseURL(t *testing.T) {
	e := newAPIEnvWith(t, apiEnvOptions{stripMode: true})
	res := e.do("GET", "/v3", "", nil).want(200)
	if href := res.obj("version")["links"].([]any)[0].(map[string]any)["href"]; href != e.base+"/v3/" {
		t.Errorf("derived href %v, want %s", href, e.base+"/v3/")
	}
	res = e.do("GET", "/v3/projects/"+e.boot.AdminProject, e.admin, nil).want(200)
	if self := res.obj("project")["links"].(map[string]any)["self"]; self != e.base+"/v3/projects/"+e.boot.AdminProject {
		t.Errorf("derived self link %v", self)
	}
	res = e.do("GET", "/v3/users", "", nil).wantFault(401)
	if got := res.header.Get("WWW-Authenticate"); got != `Keystone uri="`+e.base+`"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
}
