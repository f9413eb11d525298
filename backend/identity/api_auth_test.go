package identity_test

// REST tests of /v3/auth: issuing, validating, revoking and rescoping
// tokens, authentication failures, and what a token may be scoped to.

import (
	"testing"
)

// --- tokens ---

func TestAPITokenIssue(t *testing.T) {
	e := newAPIEnv(t)
	scopeAdmin := map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}}
	byName := map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}

	res := e.issue(apiPasswordAuth(byName, apiAdminPassword, scopeAdmin), "").want(201)
	if res.header.Get("X-Subject-Token") == "" {
		t.Fatal("no X-Subject-Token")
	}
	tok := res.obj("token")
	if m := tok["methods"].([]any); len(m) != 1 || m[0] != "password" {
		t.Errorf("methods %v", m)
	}
	u := tok["user"].(map[string]any)
	if u["id"] != e.boot.AdminUserID || u["name"] != "admin" || u["password_expires_at"] != nil {
		t.Errorf("user %v", u)
	}
	if _, ok := u["password_expires_at"]; !ok {
		t.Error("user.password_expires_at missing")
	}
	if d := u["domain"].(map[string]any); d["id"] != "default" || d["name"] != "Default" {
		t.Errorf("user domain %v", d)
	}
	p := tok["project"].(map[string]any)
	if p["id"] != e.boot.AdminProject || p["name"] != "admin" || p["domain"].(map[string]any)["id"] != "default" {
		t.Errorf("project %v", p)
	}
	if tok["is_domain"] != false {
		t.Errorf("is_domain %v", tok["is_domain"])
	}
	for _, k := range []string{"expires_at", "issued_at"} {
		if s, _ := tok[k].(string); !apiTimeRE.MatchString(s) {
			t.Errorf("%s %q not in Keystone's format", k, s)
		}
	}
	if a := tok["audit_ids"].([]any); len(a) != 1 || a[0] == "" {
		t.Errorf("audit_ids %v", a)
	}
	roles := map[string]bool{}
	for _, r := range tok["roles"].([]any) {
		rm := r.(map[string]any)
		if rm["id"] == "" {
			t.Errorf("role without id: %v", rm)
		}
		roles[rm["name"].(string)] = true
	}
	if !roles["admin"] {
		t.Errorf("roles %v lack admin", roles)
	}
	apiCheckCatalog(t, e, tok["catalog"])

	// ?nocatalog leaves the catalog out.
	res = e.issue(apiPasswordAuth(byName, apiAdminPassword, scopeAdmin), "?nocatalog").want(201)
	if _, ok := res.obj("token")["catalog"]; ok {
		t.Error("?nocatalog still returned a catalog")
	}

	// Unscoped: by user ID, explicit "unscoped".
	res = e.issue(apiPasswordAuth(map[string]any{"id": e.boot.AdminUserID}, apiAdminPassword, "unscoped"), "").want(201)
	tok = res.obj("token")
	for _, k := range []string{"project", "domain", "roles", "catalog"} {
		if _, ok := tok[k]; ok {
			t.Errorf("unscoped token has %q: %s", k, res.raw)
		}
	}

	// Domain scope needs a role on the domain, which admin lacks: the one
	// Unauthorized answer, as for every failed authentication.
	e.issue(apiPasswordAuth(map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}, apiAdminPassword,
		map[string]any{"domain": map[string]any{"id": "default"}}), "").wantFault(401)

	// System scope: bootstrap makes admin a system admin, as Keystone's does.
	res = e.issue(apiPasswordAuth(map[string]any{"id": e.boot.AdminUserID}, apiAdminPassword,
		map[string]any{"system": map[string]any{"all": true}}), "").want(201)
	tok = res.obj("token")
	if s := tok["system"].(map[string]any); s["all"] != true {
		t.Errorf("system scope %v", s)
	}
	if _, ok := tok["project"]; ok {
		t.Errorf("system token has a project: %s", res.raw)
	}
	apiCheckCatalog(t, e, tok["catalog"])
}

func apiCheckCatalog(t *testing.T, e *apiEnv, v any) {
	t.Helper()
	cat, ok := v.([]any)
	if !ok || len(cat) == 0 {
		t.Fatalf("catalog %v", v)
	}
	found := false
	for _, c := range cat {
		cm := c.(map[string]any)
		if cm["id"] == "" || cm["name"] == nil {
			t.Errorf("catalog entry %v", cm)
		}
		if cm["type"] != "identity" {
			continue
		}
		for _, ep := range cm["endpoints"].([]any) {
			em := ep.(map[string]any)
			if em["interface"] == "public" && em["url"] == e.base && em["region_id"] == "RegionOne" && em["region"] == "RegionOne" && em["id"] != "" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no public identity endpoint %s in catalog %v", e.base, cat)
	}
}

func TestAPITokenValidateAndRevoke(t *testing.T) {
	e := newAPIEnv(t)
	_, userID, userTok := e.member("alice")

	res := e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", userTok).want(200)
	if res.header.Get("X-Subject-Token") != userTok {
		t.Error("validate did not echo X-Subject-Token")
	}
	tok := res.obj("token")
	if tok["user"].(map[string]any)["id"] != userID {
		t.Errorf("validated user %v", tok["user"])
	}
	if _, ok := tok["catalog"]; !ok {
		t.Error("validation without ?nocatalog lacks catalog")
	}
	res = e.do("GET", "/v3/auth/tokens?nocatalog", e.admin, nil, "X-Subject-Token", userTok).want(200)
	if _, ok := res.obj("token")["catalog"]; ok {
		t.Error("?nocatalog validation has catalog")
	}
	// A user may validate its own token.
	e.do("GET", "/v3/auth/tokens", userTok, nil, "X-Subject-Token", userTok).want(200)

	e.do("HEAD", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", userTok).want(200)
	e.do("HEAD", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", "garbage").want(404)
	e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", "garbage").wantFault(404)
	e.do("GET", "/v3/auth/tokens", e.admin, nil).wantFault(400)

	e.do("DELETE", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", userTok).want(204)
	e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", userTok).wantFault(404)
	res = e.do("GET", "/v3/auth/projects", userTok, nil).wantFault(401)
	if res.header.Get("WWW-Authenticate") == "" {
		t.Error("401 for a revoked token without WWW-Authenticate")
	}
}

func TestAPITokenRescope(t *testing.T) {
	e := newAPIEnv(t)
	projectID, userID, _ := e.member("bob")
	unscoped := e.issue(apiPasswordAuth(map[string]any{"id": userID}, "bob-password", "unscoped"), "").want(201)
	first := unscoped.obj("token")["audit_ids"].([]any)[0]

	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": unscoped.header.Get("X-Subject-Token")}},
		"scope":    map[string]any{"project": map[string]any{"id": projectID}},
	}}
	res := e.issue(body, "").want(201)
	tok := res.obj("token")
	if tok["project"].(map[string]any)["id"] != projectID {
		t.Errorf("rescoped project %v", tok["project"])
	}
	audit := tok["audit_ids"].([]any)
	if len(audit) != 2 || audit[1] != first {
		t.Errorf("rescoped audit_ids %v, want [new, %v]", audit, first)
	}
	if m := tok["methods"].([]any); len(m) == 0 {
		t.Errorf("methods %v", m)
	}
	// The rescoped token works.
	e.do("GET", "/v3/projects/"+projectID, res.header.Get("X-Subject-Token"), nil).want(200)
}

func TestAPIAuthRejections(t *testing.T) {
	e := newAPIEnv(t)
	goodUser := map[string]any{"id": e.boot.AdminUserID}
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"wrong password", apiPasswordAuth(map[string]any{"id": e.boot.AdminUserID}, "nope", nil), 401},
		{"unknown user", apiPasswordAuth(map[string]any{"name": "ghost", "domain": map[string]any{"id": "default"}}, "x", nil), 401},
		{"malformed JSON", `{"auth": {`, 400},
		{"empty body", ``, 400},
		{"no auth", `{}`, 400},
		{"no identity", `{"auth": {}}`, 400},
		{"no methods", `{"auth": {"identity": {}}}`, 400},
		{"methods not an array", `{"auth": {"identity": {"methods": "password"}}}`, 400},
		{"password not a string", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x", "password": 5}}}}}`, 400},
		{"user without id or name", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "x"}}}}}`, 400},
		{"domain without id or name", apiPasswordAuth(map[string]any{"name": "admin", "domain": map[string]any{}}, apiAdminPassword, nil), 400},
		{"scope project without id or name", apiPasswordAuth(goodUser, apiAdminPassword, map[string]any{"project": map[string]any{}}), 400},
		{"scope not a scope", apiPasswordAuth(map[string]any{"id": e.boot.AdminUserID}, apiAdminPassword, "everything"), 400},
		{"scope to unknown project", apiPasswordAuth(map[string]any{"id": e.boot.AdminUserID}, apiAdminPassword,
			map[string]any{"project": map[string]any{"id": "nope"}}), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			res := e.issue(tc.body, "")
			res.wantFault(tc.status)
			if res.status == 401 && res.header.Get("WWW-Authenticate") != `Keystone uri="`+e.base+`"` {
				t.Errorf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
			}
			if res.header.Get("X-Subject-Token") != "" {
				t.Error("failed authentication returned a token")
			}
		})
	}
	e.t = t

	// Every authenticated route refuses a missing or bad token with 401.
	for _, tok := range []string{"", "not-a-token", e.admin + "x"} {
		res := e.do("GET", "/v3/projects", tok, nil).wantFault(401)
		if got := res.header.Get("WWW-Authenticate"); got != `Keystone uri="`+e.base+`"` {
			t.Errorf("token %q: WWW-Authenticate %q", tok, got)
		}
	}
}

// A disabled user's tokens stop working at once.
func TestAPIDisabledUserTokenRevoked(t *testing.T) {
	e := newAPIEnv(t)
	projectID, userID, tok := e.member("carol")
	e.do("GET", "/v3/projects/"+projectID, tok, nil).want(200)
	e.do("PATCH", "/v3/users/"+userID, e.admin, map[string]any{"user": map[string]any{"enabled": false}}).want(200)
	e.do("GET", "/v3/projects/"+projectID, tok, nil).wantFault(401)
	e.issue(apiPasswordAuth(map[string]any{"id": userID}, "carol-password", nil), "").wantFault(401)
}

func TestAPIAuthScopes(t *testing.T) {
	e := newAPIEnv(t)
	projectID, _, tok := e.member("dave")
	other := e.createProject("not-daves", nil)

	res := e.do("GET", "/v3/auth/projects", tok, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != projectID {
		t.Errorf("auth/projects %v, want [%s]", ids, projectID)
	}
	for _, id := range res.ids("projects") {
		if id == other {
			t.Error("auth/projects lists a project the user has no role on")
		}
	}
	if l := res.obj("links"); l["self"] != e.base+"/v3/auth/projects" {
		t.Errorf("links %v", l)
	}
	res = e.do("GET", "/v3/auth/domains", tok, nil).want(200)
	if len(res.list("domains")) != 0 {
		t.Errorf("a project member has domain scopes: %s", res.raw)
	}
	res = e.do("GET", "/v3/auth/system", tok, nil).want(200)
	if len(res.list("system")) != 0 {
		t.Errorf("a project member may scope to the system: %s", res.raw)
	}
	res = e.do("GET", "/v3/auth/catalog", tok, nil).want(200)
	apiCheckCatalog(t, e, res.body["catalog"])
	unscoped := e.issue(apiPasswordAuth(map[string]any{"name": "dave", "domain": map[string]any{"name": "Default"}}, "dave-password", nil), "").
		want(201).header.Get("X-Subject-Token")
	e.do("GET", "/v3/auth/catalog", unscoped, nil).wantFault(403)

	res = e.do("GET", "/v3/auth/projects", e.admin, nil).want(200)
	if !apiContains(res.ids("projects"), e.boot.AdminProject) {
		t.Errorf("admin's auth/projects %v lack the admin project", res.ids("projects"))
	}
}

func apiContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
