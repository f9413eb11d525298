package network_test

// The environment of the REST API tests: a real identity service and a
// real network service on one temporary SQLite file, served by httptest
// with identity at /identity and the network API at /network, exactly as
// the web server mounts them. Helpers are prefixed "api".

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

const apiAdminPassword = "network-admin-pass"

type apiEnv struct {
	t        testing.TB
	srv      *httptest.Server
	ids      *identity.Service
	net      *network.Service
	base     string // <srv>/network
	boot     *identity.BootstrapResult
	admin    string // admin token, scoped to the admin project
	adminCtx context.Context
	roles    map[string]string
}

func newAPIEnv(t testing.TB, tweak ...func(*network.Config)) *apiEnv {
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
	pol := policy.New(policy.BaseRules())
	pol.Register(identity.PolicyRules()...)
	pol.Register(network.PolicyRules()...)
	ids, err := identity.New(ctx, d, identity.Config{Policy: pol, BcryptCost: bcrypt.MinCost, LoginMaxFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	boot, err := ids.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: apiAdminPassword,
		PublicURL:     srv.URL,
		Services: []identity.ServiceSpec{
			{Type: "identity", Name: "keystone", Path: "/identity"},
			{Type: "network", Name: "neutron", Path: "/network"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := network.Config{Policy: pol, Tokens: ids, IdentityURL: srv.URL + "/identity"}
	for _, f := range tweak {
		f(&cfg)
	}
	ns, err := network.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/identity", identity.NewAPI(ids, srv.URL+"/identity"))
	r.Mount("/network", network.NewAPI(ns, srv.URL+"/network"))
	h = r
	e := &apiEnv{t: t, srv: srv, ids: ids, net: ns, base: srv.URL + "/network", boot: boot, roles: map[string]string{}}
	e.admin = e.token(boot.AdminUserID, apiAdminPassword, boot.AdminProject)
	c, err := ids.ValidateToken(ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	e.adminCtx = auth.WithCredentials(ctx, c)
	rs, _, err := ids.ListRoles(e.adminCtx, identity.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range rs {
		e.roles[ro.Name] = ro.ID
	}
	return e
}

// token authenticates a user by ID and password, scoped to a project.
func (e *apiEnv) token(userID, password, projectID string) string {
	e.t.Helper()
	ti, err := e.ids.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserID: userID, Password: password},
		Scope:    identity.Scope{ProjectID: projectID},
	})
	if err != nil {
		e.t.Fatalf("authenticate %s: %v", userID, err)
	}
	return ti.Token
}

// user makes a project and a user holding role there, and returns the
// project ID and the user's token.
func (e *apiEnv) user(name, role string) (string, string) {
	e.t.Helper()
	p, err := e.ids.CreateProject(e.adminCtx, identity.Project{Name: name + "-project", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.ids.CreateUser(e.adminCtx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, name+"-password")
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.ids.Grant(e.adminCtx, identity.Assignment{ActorType: identity.ActorUser, ActorID: u.ID,
		TargetType: identity.TargetProject, TargetID: p.ID, RoleID: e.roles[role]})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.ID, e.token(u.ID, name+"-password", p.ID)
}

// apiResp is a response with its decoded JSON body.
type apiResp struct {
	t      testing.TB
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

// wantFault checks a NeutronError body with the status and type.
func (r *apiResp) wantFault(status int, typ string) *apiResp {
	r.t.Helper()
	r.want(status)
	ne, ok := r.body["NeutronError"].(map[string]any)
	if !ok || ne["message"] == "" {
		r.t.Fatalf("%s: no NeutronError body: %s", r.req, r.raw)
	}
	if typ != "" && ne["type"] != typ {
		r.t.Fatalf("%s: fault type %v, want %s; body %s", r.req, ne["type"], typ, r.raw)
	}
	if _, ok := ne["detail"]; !ok {
		r.t.Fatalf("%s: no detail in %s", r.req, r.raw)
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

func (r *apiResp) id(key string) string {
	r.t.Helper()
	return r.obj(key)["id"].(string)
}

// do sends a request; path is relative to <srv>/network. A string body is
// sent as is, anything else as JSON.
func (e *apiEnv) do(method, path, token string, body any) *apiResp {
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
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
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

// m is shorthand for a JSON object.
type m = map[string]any
