package identity_test

// REST tests of users, groups, roles, grants, role assignments,
// application credentials, domains and the catalog resources.

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIUsers(t *testing.T) {
	e := newAPIEnv(t)
	projectID := e.createProject("home", nil)
	res := e.do("POST", "/v3/users", e.admin, map[string]any{"user": map[string]any{
		"name": "gina", "domain_id": "default", "enabled": true, "password": "first-pass",
		"default_project_id": projectID, "email": "gina@example.com", "description": "ops",
		"options": map[string]any{}, "federated": []any{}, "favourite_colour": "green",
	}}).want(201)
	u := res.obj("user")
	id := u["id"].(string)
	want := map[string]any{"name": "gina", "domain_id": "default", "enabled": true, "default_project_id": projectID,
		"email": "gina@example.com", "description": "ops"}
	for k, v := range want {
		if u[k] != v {
			t.Errorf("user.%s = %v, want %v", k, u[k], v)
		}
	}
	if _, ok := u["password"]; ok {
		t.Error("user body shows the password")
	}
	if !strings.Contains(string(res.raw), `"password_expires_at":null`) {
		t.Errorf("password_expires_at not null: %s", res.raw)
	}
	if l := u["links"].(map[string]any)["self"]; l != e.base+"/v3/users/"+id {
		t.Errorf("self %v", l)
	}

	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"duplicate", map[string]any{"user": map[string]any{"name": "gina", "domain_id": "default"}}, 409},
		{"missing name", map[string]any{"user": map[string]any{"password": "x"}}, 400},
		{"name too long", map[string]any{"user": map[string]any{"name": strings.Repeat("u", 300)}}, 400},
		{"password wrong type", map[string]any{"user": map[string]any{"name": "h", "password": 12}}, 400},
		{"enabled wrong type", map[string]any{"user": map[string]any{"name": "h", "enabled": "true"}}, 400},
		{"malformed", `{"user": }`, 400},
		{"unknown domain", map[string]any{"user": map[string]any{"name": "h", "domain_id": "nope"}}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.do("POST", "/v3/users", e.admin, tc.body).wantFault(tc.status)
		})
	}
	e.t = t

	got := e.do("GET", "/v3/users/"+id, e.admin, nil).want(200).obj("user")
	if got["name"] != "gina" {
		t.Errorf("get %v", got)
	}
	res = e.do("GET", "/v3/users?name=gina&domain_id=default", e.admin, nil).want(200)
	if ids := res.ids("users"); len(ids) != 1 || ids[0] != id {
		t.Errorf("filtered users %v", ids)
	}
	res = e.do("GET", "/v3/users?enabled=false", e.admin, nil).want(200)
	if len(res.list("users")) != 0 {
		t.Errorf("disabled users %v", res.ids("users"))
	}
	upd := e.do("PATCH", "/v3/users/"+id, e.admin, map[string]any{"user": map[string]any{"description": "dev", "email": "g@example.org"}}).
		want(200).obj("user")
	if upd["description"] != "dev" || upd["email"] != "g@example.org" || upd["name"] != "gina" {
		t.Errorf("update %v", upd)
	}
	e.do("GET", "/v3/users/nope", e.admin, nil).wantFault(404)

	// Password change by the user itself.
	e.grant(projectID, id, "member")
	tok := e.tokenByID(id, "first-pass", projectID)
	pw := "/v3/users/" + id + "/password"
	e.do("POST", pw, tok, map[string]any{"user": map[string]any{"original_password": "wrong", "password": "x-new-pass"}}).wantFault(401)
	e.do("POST", pw, tok, map[string]any{"user": map[string]any{"password": "x-new-pass"}}).wantFault(400)
	e.do("POST", pw, tok, map[string]any{"user": map[string]any{"original_password": "first-pass", "password": "x", "extra": 1}}).wantFault(400)
	e.do("POST", pw, tok, map[string]any{"user": map[string]any{"original_password": "first-pass", "password": "second-pass"}}).want(204)
	e.issue(apiPasswordAuth(map[string]any{"id": id}, "first-pass", nil), "").wantFault(401)
	tok = e.tokenByID(id, "second-pass", projectID)

	// Admin resets the password without the old one.
	e.do("PATCH", "/v3/users/"+id, e.admin, map[string]any{"user": map[string]any{"password": "third-pass"}}).want(200)
	e.tokenByID(id, "third-pass", projectID)

	res = e.do("GET", "/v3/users/"+id+"/projects", e.admin, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != projectID {
		t.Errorf("user projects %v", ids)
	}
	e.do("DELETE", "/v3/users/"+id, e.admin, nil).want(204)
	e.do("GET", "/v3/users/"+id, e.admin, nil).wantFault(404)
	e.do("DELETE", "/v3/users/"+id, e.admin, nil).wantFault(404)
	// Deleting a user ends its tokens.
	e.do("GET", "/v3/auth/projects", tok, nil).wantFault(401)
}

func TestAPIGroups(t *testing.T) {
	e := newAPIEnv(t)
	uid := e.createUser("hank", "hank-pass")
	other := e.createUser("ivy", "ivy-pass")
	res := e.do("POST", "/v3/groups", e.admin, map[string]any{"group": map[string]any{
		"name": "devs", "domain_id": "default", "description": "developers"}}).want(201)
	g := res.obj("group")
	gid := g["id"].(string)
	if g["name"] != "devs" || g["domain_id"] != "default" || g["description"] != "developers" ||
		g["links"].(map[string]any)["self"] != e.base+"/v3/groups/"+gid {
		t.Errorf("group %v", g)
	}
	e.do("POST", "/v3/groups", e.admin, map[string]any{"group": map[string]any{"name": "devs", "domain_id": "default"}}).wantFault(409)
	e.do("POST", "/v3/groups", e.admin, map[string]any{"group": map[string]any{"description": "x"}}).wantFault(400)
	e.do("GET", "/v3/groups/"+gid, e.admin, nil).want(200)
	res = e.do("GET", "/v3/groups?name=devs", e.admin, nil).want(200)
	if ids := res.ids("groups"); len(ids) != 1 || ids[0] != gid {
		t.Errorf("groups %v", ids)
	}
	upd := e.do("PATCH", "/v3/groups/"+gid, e.admin, map[string]any{"group": map[string]any{"description": "all devs"}}).want(200).obj("group")
	if upd["description"] != "all devs" {
		t.Errorf("update %v", upd)
	}

	member := "/v3/groups/" + gid + "/users/" + uid
	e.do("PUT", member, e.admin, nil).want(204)
	e.do("HEAD", member, e.admin, nil).want(204)
	e.do("GET", member, e.admin, nil).want(204)
	e.do("HEAD", "/v3/groups/"+gid+"/users/"+other, e.admin, nil).want(404)
	e.do("PUT", "/v3/groups/"+gid+"/users/nope", e.admin, nil).wantFault(404)
	e.do("PUT", "/v3/groups/nope/users/"+uid, e.admin, nil).wantFault(404)
	res = e.do("GET", "/v3/groups/"+gid+"/users", e.admin, nil).want(200)
	if ids := res.ids("users"); len(ids) != 1 || ids[0] != uid {
		t.Errorf("members %v", ids)
	}
	res = e.do("GET", "/v3/users/"+uid+"/groups", e.admin, nil).want(200)
	if ids := res.ids("groups"); len(ids) != 1 || ids[0] != gid {
		t.Errorf("user groups %v", ids)
	}
	e.do("DELETE", member, e.admin, nil).want(204)
	e.do("HEAD", member, e.admin, nil).want(404)
	e.do("DELETE", "/v3/groups/"+gid, e.admin, nil).want(204)
	e.do("GET", "/v3/groups/"+gid, e.admin, nil).wantFault(404)
}

func TestAPIRolesAndGrants(t *testing.T) {
	e := newAPIEnv(t)
	for _, name := range []string{"admin", "member", "reader"} {
		if e.roleIDs[name] == "" {
			t.Errorf("bootstrap role %q missing: %v", name, e.roleIDs)
		}
	}
	res := e.do("POST", "/v3/roles", e.admin, map[string]any{"role": map[string]any{"name": "auditor", "description": "reads logs", "options": map[string]any{}}}).want(201)
	ro := res.obj("role")
	rid := ro["id"].(string)
	if ro["name"] != "auditor" || ro["domain_id"] != nil || ro["links"].(map[string]any)["self"] != e.base+"/v3/roles/"+rid {
		t.Errorf("role %v", ro)
	}
	e.do("POST", "/v3/roles", e.admin, map[string]any{"role": map[string]any{"name": "auditor"}}).wantFault(409)
	e.do("POST", "/v3/roles", e.admin, map[string]any{"role": map[string]any{"name": 5}}).wantFault(400)
	e.do("GET", "/v3/roles/"+rid, e.admin, nil).want(200)
	if ids := e.do("GET", "/v3/roles?name=auditor", e.admin, nil).want(200).ids("roles"); len(ids) != 1 || ids[0] != rid {
		t.Errorf("roles by name %v", ids)
	}
	upd := e.do("PATCH", "/v3/roles/"+rid, e.admin, map[string]any{"role": map[string]any{"description": "reads everything"}}).want(200).obj("role")
	if upd["description"] != "reads everything" {
		t.Errorf("role update %v", upd)
	}

	pid := e.createProject("granted", nil)
	uid := e.createUser("jack", "jack-pass")
	grant := "/v3/projects/" + pid + "/users/" + uid + "/roles/" + rid
	e.do("HEAD", grant, e.admin, nil).want(404)
	e.do("PUT", grant, e.admin, nil).want(204)
	e.do("HEAD", grant, e.admin, nil).want(204)
	e.do("GET", grant, e.admin, nil).want(204)
	res = e.do("GET", "/v3/projects/"+pid+"/users/"+uid+"/roles", e.admin, nil).want(200)
	if roles := res.list("roles"); len(roles) != 1 || roles[0]["id"] != rid || roles[0]["name"] != "auditor" {
		t.Errorf("grants on project: %s", res.raw)
	}
	e.do("PUT", "/v3/projects/nope/users/"+uid+"/roles/"+rid, e.admin, nil).wantFault(404)
	e.do("PUT", "/v3/projects/"+pid+"/users/nope/roles/"+rid, e.admin, nil).wantFault(404)
	e.do("PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/nope", e.admin, nil).wantFault(404)

	// Domain and system grants.
	dgrant := "/v3/domains/default/users/" + uid + "/roles/" + rid
	e.do("PUT", dgrant, e.admin, nil).want(204)
	e.do("HEAD", dgrant, e.admin, nil).want(204)
	if roles := e.do("GET", "/v3/domains/default/users/"+uid+"/roles", e.admin, nil).want(200).list("roles"); len(roles) != 1 {
		t.Errorf("domain grants %v", roles)
	}
	e.do("DELETE", dgrant, e.admin, nil).want(204)
	sgrant := "/v3/system/users/" + uid + "/roles/" + e.roleIDs["reader"]
	e.do("PUT", sgrant, e.admin, nil).want(204)
	e.do("HEAD", sgrant, e.admin, nil).want(204)
	if roles := e.do("GET", "/v3/system/users/"+uid+"/roles", e.admin, nil).want(200).list("roles"); len(roles) != 1 || roles[0]["name"] != "reader" {
		t.Errorf("system grants %v", roles)
	}
	e.do("DELETE", sgrant, e.admin, nil).want(204)
	e.do("HEAD", sgrant, e.admin, nil).want(404)

	// OS-INHERIT: a domain grant inherited by the domain's projects.
	igrant := "/v3/OS-INHERIT/domains/default/users/" + uid + "/roles/" + rid + "/inherited_to_projects"
	e.do("HEAD", igrant, e.admin, nil).want(404)
	e.do("PUT", igrant, e.admin, nil).want(204)
	e.do("HEAD", igrant, e.admin, nil).want(204)
	res = e.do("GET", "/v3/OS-INHERIT/domains/default/users/"+uid+"/roles/inherited_to_projects", e.admin, nil).want(200)
	if roles := res.list("roles"); len(roles) != 1 || roles[0]["id"] != rid {
		t.Errorf("inherited grants %s", res.raw)
	}
	res = e.do("GET", "/v3/role_assignments?user.id="+uid, e.admin, nil).want(200)
	inherited := false
	for _, row := range res.list("role_assignments") {
		if row["scope"].(map[string]any)["OS-INHERIT:inherited_to"] == "projects" {
			inherited = row["links"].(map[string]any)["assignment"] == e.base+igrant
		}
	}
	if !inherited {
		t.Errorf("inherited row missing or mislinked: %s", res.raw)
	}
	other := e.createProject("inherits", nil)
	res = e.do("GET", "/v3/role_assignments?user.id="+uid+"&effective&scope.project.id="+other+"&role.id="+rid, e.admin, nil).want(200)
	if len(res.list("role_assignments")) == 0 {
		t.Errorf("inherited role does not reach the domain's project: %s", res.raw)
	}
	e.do("DELETE", igrant, e.admin, nil).want(204)
	e.do("HEAD", igrant, e.admin, nil).want(404)

	// Group grants.
	gid := e.do("POST", "/v3/groups", e.admin, map[string]any{"group": map[string]any{"name": "g1"}}).want(201).obj("group")["id"].(string)
	ggrant := "/v3/projects/" + pid + "/groups/" + gid + "/roles/" + rid
	e.do("PUT", ggrant, e.admin, nil).want(204)
	e.do("HEAD", ggrant, e.admin, nil).want(204)
	e.do("DELETE", ggrant, e.admin, nil).want(204)

	e.do("DELETE", grant, e.admin, nil).want(204)
	e.do("HEAD", grant, e.admin, nil).want(404)
	e.do("DELETE", grant, e.admin, nil).wantFault(404)
	e.do("DELETE", "/v3/roles/"+rid, e.admin, nil).want(204)
	e.do("GET", "/v3/roles/"+rid, e.admin, nil).wantFault(404)
}

// A removed role stops the tokens that carried it.
func TestAPIRevokedGrantEndsToken(t *testing.T) {
	e := newAPIEnv(t)
	pid, uid, tok := e.member("kate")
	e.do("GET", "/v3/projects/"+pid, tok, nil).want(200)
	e.do("DELETE", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+e.roleIDs["member"], e.admin, nil).want(204)
	res := e.do("GET", "/v3/projects/"+pid, tok, nil)
	if res.status != 401 && res.status != 403 {
		t.Fatalf("token of a revoked grant: status %d", res.status)
	}
}

func TestAPIRoleAssignments(t *testing.T) {
	e := newAPIEnv(t)
	pid := e.createProject("assigned", nil)
	uid := e.createUser("liam", "liam-pass")
	gid := e.do("POST", "/v3/groups", e.admin, map[string]any{"group": map[string]any{"name": "readers"}}).want(201).obj("group")["id"].(string)
	e.do("PUT", "/v3/groups/"+gid+"/users/"+uid, e.admin, nil).want(204)
	e.do("PUT", "/v3/projects/"+pid+"/groups/"+gid+"/roles/"+e.roleIDs["reader"], e.admin, nil).want(204)
	e.grant(pid, uid, "member")

	// Direct assignments on the project: the user's and the group's.
	res := e.do("GET", "/v3/role_assignments?scope.project.id="+pid, e.admin, nil).want(200)
	rows := res.list("role_assignments")
	if len(rows) != 2 {
		t.Fatalf("direct assignments on project: %s", res.raw)
	}
	var sawUser, sawGroup bool
	for _, r := range rows {
		scope := r["scope"].(map[string]any)["project"].(map[string]any)
		if scope["id"] != pid {
			t.Errorf("scope %v", scope)
		}
		link := r["links"].(map[string]any)["assignment"]
		if u, ok := r["user"].(map[string]any); ok {
			sawUser = u["id"] == uid && r["role"].(map[string]any)["id"] == e.roleIDs["member"] &&
				link == e.base+"/v3/projects/"+pid+"/users/"+uid+"/roles/"+e.roleIDs["member"]
			if _, named := u["name"]; named {
				t.Error("names without include_names")
			}
		}
		if g, ok := r["group"].(map[string]any); ok {
			sawGroup = g["id"] == gid && link == e.base+"/v3/projects/"+pid+"/groups/"+gid+"/roles/"+e.roleIDs["reader"]
		}
	}
	if !sawUser || !sawGroup {
		t.Errorf("direct rows wrong: %s", res.raw)
	}
	if l := res.obj("links"); l["next"] != nil || l["previous"] != nil || l["self"] == nil {
		t.Errorf("links %v", l)
	}

	// Effective for the user: the group row becomes the user's, with the
	// membership link; include_names fills names.
	res = e.do("GET", "/v3/role_assignments?user.id="+uid+"&effective&include_names", e.admin, nil).want(200)
	if self := res.obj("links")["self"]; self != e.base+"/v3/role_assignments?user.id="+uid+"&effective&include_names" {
		t.Errorf("self link %v does not echo the query", self)
	}
	rows = res.list("role_assignments")
	// Effective rows include roles implied by the granted ones (member
	// implies reader), as Keystone's do; the group's reader grant must be
	// there as a user row carrying the membership link.
	roles := map[string]bool{}
	var viaGroup map[string]any
	for _, r := range rows {
		if _, ok := r["group"]; ok {
			t.Errorf("effective listing has a group row: %v", r)
		}
		u := r["user"].(map[string]any)
		if u["id"] != uid || u["name"] != "liam" || u["domain"].(map[string]any)["id"] != "default" || u["domain"].(map[string]any)["name"] != "Default" {
			t.Errorf("named user %v", u)
		}
		p := r["scope"].(map[string]any)["project"].(map[string]any)
		if p["name"] != "assigned" || p["domain"].(map[string]any)["name"] != "Default" {
			t.Errorf("named project %v", p)
		}
		name := r["role"].(map[string]any)["name"].(string)
		roles[name] = true
		if links := r["links"].(map[string]any); links["membership"] != nil && name == "reader" {
			viaGroup = links
		}
	}
	if !roles["member"] || !roles["reader"] {
		t.Fatalf("effective roles %v: %s", roles, res.raw)
	}
	if viaGroup == nil || viaGroup["membership"] != e.base+"/v3/groups/"+gid+"/users/"+uid ||
		viaGroup["assignment"] != e.base+"/v3/projects/"+pid+"/groups/"+gid+"/roles/"+e.roleIDs["reader"] {
		t.Errorf("group-derived links %v in %s", viaGroup, res.raw)
	}

	// Filters.
	res = e.do("GET", "/v3/role_assignments?group.id="+gid, e.admin, nil).want(200)
	if rows := res.list("role_assignments"); len(rows) != 1 || rows[0]["group"].(map[string]any)["id"] != gid {
		t.Errorf("group.id filter: %s", res.raw)
	}
	res = e.do("GET", "/v3/role_assignments?role.id="+e.roleIDs["member"]+"&scope.project.id="+pid, e.admin, nil).want(200)
	if rows := res.list("role_assignments"); len(rows) != 1 || rows[0]["user"].(map[string]any)["id"] != uid {
		t.Errorf("role.id filter: %s", res.raw)
	}
	res = e.do("GET", "/v3/role_assignments?scope.system=all", e.admin, nil).want(200)
	for _, r := range res.list("role_assignments") {
		if r["scope"].(map[string]any)["system"].(map[string]any)["all"] != true {
			t.Errorf("system row %v", r)
		}
		if !strings.HasPrefix(r["links"].(map[string]any)["assignment"].(string), e.base+"/v3/system/") {
			t.Errorf("system assignment link %v", r["links"])
		}
	}
	res = e.do("GET", "/v3/role_assignments?effective=false&user.id="+uid, e.admin, nil).want(200)
	if len(res.list("role_assignments")) != 1 {
		t.Errorf("effective=false expanded groups: %s", res.raw)
	}
	for _, q := range []string{"effective&group.id=" + gid, "user.id=" + uid + "&group.id=" + gid, "scope.project.id=" + pid + "&scope.domain.id=default"} {
		e.do("GET", "/v3/role_assignments?"+q, e.admin, nil).wantFault(400)
	}
}

func TestAPIAppCredentials(t *testing.T) {
	e := newAPIEnv(t)
	pid, uid, tok := e.member("mia")
	base := "/v3/users/" + uid + "/application_credentials"
	expires := time.Now().Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05")
	res := e.do("POST", base, tok, map[string]any{"application_credential": map[string]any{
		"name": "ci", "description": "for CI", "expires_at": expires, "roles": []any{map[string]any{"name": "member"}},
	}}).want(201)
	c := res.obj("application_credential")
	id := c["id"].(string)
	secret, _ := c["secret"].(string)
	if secret == "" || c["name"] != "ci" || c["project_id"] != pid || c["unrestricted"] != false || c["description"] != "for CI" {
		t.Fatalf("created app credential %s", res.raw)
	}
	if c["expires_at"] != expires+".000000" {
		t.Errorf("expires_at %v, want %s.000000", c["expires_at"], expires)
	}
	if roles := c["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["name"] != "member" {
		t.Errorf("roles %v", roles)
	}
	if c["links"].(map[string]any)["self"] != e.base+base+"/"+id {
		t.Errorf("links %v", c["links"])
	}

	// The secret is shown once.
	got := e.do("GET", base+"/"+id, tok, nil).want(200).obj("application_credential")
	if _, ok := got["secret"]; ok {
		t.Error("GET shows the secret")
	}
	res = e.do("GET", base, tok, nil).want(200)
	if rows := res.list("application_credentials"); len(rows) != 1 || rows[0]["id"] != id || rows[0]["secret"] != nil {
		t.Errorf("list %s", res.raw)
	}
	if rows := e.do("GET", base+"?name=other", tok, nil).want(200).list("application_credentials"); len(rows) != 0 {
		t.Errorf("name filter %v", rows)
	}

	auth := func(cred map[string]any) *apiResp {
		return e.issue(map[string]any{"auth": map[string]any{"identity": map[string]any{
			"methods": []string{"application_credential"}, "application_credential": cred}}}, "")
	}
	res = auth(map[string]any{"id": id, "secret": secret}).want(201)
	tk := res.obj("token")
	if tk["project"].(map[string]any)["id"] != pid || tk["methods"].([]any)[0] != "application_credential" {
		t.Errorf("app credential token %s", res.raw)
	}
	if ac := tk["application_credential"].(map[string]any); ac["id"] != id || ac["restricted"] != true {
		t.Errorf("token application_credential %v", ac)
	}
	appTok := res.header.Get("X-Subject-Token")
	// By name and user.
	auth(map[string]any{"name": "ci", "secret": secret, "user": map[string]any{"id": uid}}).want(201)
	auth(map[string]any{"id": id, "secret": "wrong"}).wantFault(401)
	// A restricted credential cannot make another.
	e.do("POST", base, appTok, map[string]any{"application_credential": map[string]any{"name": "ci2"}}).wantFault(403)

	for _, body := range []any{
		map[string]any{"application_credential": map[string]any{"description": "no name"}},
		map[string]any{"application_credential": map[string]any{"name": "x", "roles": []any{map[string]any{"id": "a", "name": "b"}}}},
		map[string]any{"application_credential": map[string]any{"name": "x", "expires_at": "tomorrow"}},
		map[string]any{"application_credential": map[string]any{"name": "x", "unrestricted": "yes"}},
	} {
		e.do("POST", base, tok, body).wantFault(400)
	}
	e.do("POST", base, tok, map[string]any{"application_credential": map[string]any{"name": "ci"}}).wantFault(409)

	e.do("DELETE", base+"/"+id, tok, nil).want(204)
	e.do("GET", base+"/"+id, tok, nil).wantFault(404)
	auth(map[string]any{"id": id, "secret": secret}).wantFault(401)
	e.do("GET", "/v3/auth/projects", appTok, nil).wantFault(401)
}

func TestAPIDomains(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("GET", "/v3/domains/default", e.admin, nil).want(200)
	if d := res.obj("domain"); d["name"] != "Default" || d["enabled"] != true || d["links"].(map[string]any)["self"] != e.base+"/v3/domains/default" {
		t.Errorf("default domain %v", d)
	}
	d := e.do("POST", "/v3/domains", e.admin, map[string]any{"domain": map[string]any{"name": "acme", "description": "ACME Corp"}}).want(201).obj("domain")
	id := d["id"].(string)
	if d["name"] != "acme" || d["enabled"] != true || d["description"] != "ACME Corp" {
		t.Errorf("created domain %v", d)
	}
	e.do("POST", "/v3/domains", e.admin, map[string]any{"domain": map[string]any{"name": "acme"}}).wantFault(409)
	e.do("POST", "/v3/domains", e.admin, map[string]any{"domain": map[string]any{"name": strings.Repeat("d", 65)}}).wantFault(400)
	e.do("POST", "/v3/domains", e.admin, map[string]any{"domain": map[string]any{}}).wantFault(400)
	if ids := e.do("GET", "/v3/domains?name=acme", e.admin, nil).want(200).ids("domains"); len(ids) != 1 || ids[0] != id {
		t.Errorf("domains by name %v", ids)
	}
	// A project and a user in the new domain.
	p := e.do("POST", "/v3/projects", e.admin, map[string]any{"project": map[string]any{"name": "acme-web", "domain_id": id}}).want(201).obj("project")
	if p["domain_id"] != id || p["parent_id"] != id {
		t.Errorf("project in domain %v", p)
	}
	if ids := e.do("GET", "/v3/projects?domain_id="+id, e.admin, nil).want(200).ids("projects"); len(ids) != 1 {
		t.Errorf("projects of the domain %v", ids)
	}
	// Keystone refuses to delete an enabled domain.
	e.do("DELETE", "/v3/domains/"+id, e.admin, nil).wantFault(403)
	upd := e.do("PATCH", "/v3/domains/"+id, e.admin, map[string]any{"domain": map[string]any{"enabled": false}}).want(200).obj("domain")
	if upd["enabled"] != false {
		t.Errorf("disabled domain %v", upd)
	}
	e.do("DELETE", "/v3/domains/"+id, e.admin, nil).want(204)
	e.do("GET", "/v3/domains/"+id, e.admin, nil).wantFault(404)
	e.do("GET", "/v3/projects/"+p["id"].(string), e.admin, nil).wantFault(404)
}

func TestAPICatalog(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("GET", "/v3/regions", e.admin, nil).want(200)
	if ids := res.ids("regions"); !apiContains(ids, "RegionOne") {
		t.Errorf("regions %v", ids)
	}
	r := e.do("POST", "/v3/regions", e.admin, map[string]any{"region": map[string]any{"id": "RegionTwo", "description": "second"}}).want(201).obj("region")
	if r["id"] != "RegionTwo" || r["description"] != "second" || r["parent_region_id"] != nil {
		t.Errorf("region %v", r)
	}
	e.do("PUT", "/v3/regions/RegionThree", e.admin, map[string]any{"region": map[string]any{"parent_region_id": "RegionTwo"}}).want(201)
	if ids := e.do("GET", "/v3/regions?parent_region_id=RegionTwo", e.admin, nil).want(200).ids("regions"); len(ids) != 1 || ids[0] != "RegionThree" {
		t.Errorf("child regions %v", ids)
	}
	e.do("POST", "/v3/regions", e.admin, map[string]any{"region": map[string]any{"id": "RegionTwo"}}).wantFault(409)
	e.do("PATCH", "/v3/regions/RegionTwo", e.admin, map[string]any{"region": map[string]any{"description": "2nd"}}).want(200)
	e.do("GET", "/v3/regions/RegionTwo", e.admin, nil).want(200)

	svc := e.do("POST", "/v3/services", e.admin, map[string]any{"service": map[string]any{"type": "image", "name": "glance", "description": "images"}}).want(201).obj("service")
	sid := svc["id"].(string)
	if svc["type"] != "image" || svc["name"] != "glance" || svc["enabled"] != true {
		t.Errorf("service %v", svc)
	}
	e.do("POST", "/v3/services", e.admin, map[string]any{"service": map[string]any{"name": "no-type"}}).wantFault(400)
	if ids := e.do("GET", "/v3/services?type=image", e.admin, nil).want(200).ids("services"); len(ids) != 1 || ids[0] != sid {
		t.Errorf("services by type %v", ids)
	}
	e.do("PATCH", "/v3/services/"+sid, e.admin, map[string]any{"service": map[string]any{"description": "Glance"}}).want(200)

	ep := e.do("POST", "/v3/endpoints", e.admin, map[string]any{"endpoint": map[string]any{
		"service_id": sid, "interface": "public", "url": "http://img.example:9292", "region_id": "RegionTwo"}}).want(201).obj("endpoint")
	eid := ep["id"].(string)
	if ep["service_id"] != sid || ep["interface"] != "public" || ep["region_id"] != "RegionTwo" || ep["region"] != "RegionTwo" || ep["enabled"] != true {
		t.Errorf("endpoint %v", ep)
	}
	for _, body := range []map[string]any{
		{"service_id": sid, "interface": "sideways", "url": "http://x.example/"},
		{"service_id": sid, "interface": "public"},
		{"service_id": sid, "interface": "public", "url": "not a url"},
	} {
		e.do("POST", "/v3/endpoints", e.admin, map[string]any{"endpoint": body}).wantFault(400)
	}
	if ids := e.do("GET", "/v3/endpoints?service_id="+sid+"&interface=public&region_id=RegionTwo", e.admin, nil).want(200).ids("endpoints"); len(ids) != 1 || ids[0] != eid {
		t.Errorf("filtered endpoints %v", ids)
	}
	if ids := e.do("GET", "/v3/endpoints?service_id="+sid+"&interface=admin", e.admin, nil).want(200).ids("endpoints"); len(ids) != 0 {
		t.Errorf("interface filter %v", ids)
	}
	e.do("PATCH", "/v3/endpoints/"+eid, e.admin, map[string]any{"endpoint": map[string]any{"url": "http://img2.example:9292"}}).want(200)
	if got := e.do("GET", "/v3/endpoints/"+eid, e.admin, nil).want(200).obj("endpoint"); got["url"] != "http://img2.example:9292" {
		t.Errorf("updated endpoint %v", got)
	}

	// The new service shows in a fresh token's catalog.
	tok := e.tokenByID(e.boot.AdminUserID, apiAdminPassword, e.boot.AdminProject)
	cat := e.do("GET", "/v3/auth/catalog", tok, nil).want(200).list("catalog")
	found := false
	for _, c := range cat {
		if c["type"] == "image" {
			found = len(c["endpoints"].([]any)) == 1
		}
	}
	if !found {
		t.Errorf("image service missing from catalog %v", cat)
	}

	e.do("DELETE", "/v3/endpoints/"+eid, e.admin, nil).want(204)
	e.do("GET", "/v3/endpoints/"+eid, e.admin, nil).wantFault(404)
	e.do("DELETE", "/v3/services/"+sid, e.admin, nil).want(204)
	e.do("DELETE", "/v3/regions/RegionThree", e.admin, nil).want(204)
	e.do("DELETE", "/v3/regions/RegionTwo", e.admin, nil).want(204)
	e.do("GET", "/v3/regions/RegionTwo", e.admin, nil).wantFault(404)
}

func TestAPIUnknownRoutes(t *testing.T) {
	e := newAPIEnv(t)
	e.do("GET", "/v3/nothing-here", e.admin, nil).wantFault(http.StatusNotFound)
	res := e.do("PUT", "/v3/projects", e.admin, nil).want(http.StatusMethodNotAllowed)
	if res.body["error"] == nil {
		t.Errorf("405 body %s", res.raw)
	}
}
