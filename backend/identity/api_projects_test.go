package identity_test

// REST tests of projects, their validation and pagination, and of what a
// project member may and may not do.

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// --- projects ---

func TestAPIProjects(t *testing.T) {
	e := newAPIEnv(t)
	res := e.do("POST", "/v3/projects", e.admin, map[string]any{"project": map[string]any{
		"name": "web", "domain_id": "default", "description": "the web tier", "enabled": true,
		"tags": []string{"prod", "web"}, "options": map[string]any{}, "extra_attribute": "kept by Keystone",
	}}).want(201)
	p := res.obj("project")
	id := p["id"].(string)
	want := map[string]any{"name": "web", "domain_id": "default", "description": "the web tier", "enabled": true,
		"parent_id": "default", "is_domain": false}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("project.%s = %v, want %v", k, p[k], v)
		}
	}
	if l := p["links"].(map[string]any)["self"]; l != e.base+"/v3/projects/"+id {
		t.Errorf("self link %v", l)
	}
	if tags := fmt.Sprint(p["tags"]); tags != "[prod web]" {
		t.Errorf("tags %s", tags)
	}

	child := e.do("POST", "/v3/projects", e.admin, map[string]any{"project": map[string]any{"name": "web-child", "parent_id": id}}).
		want(201).obj("project")
	if child["parent_id"] != id || child["domain_id"] != "default" {
		t.Errorf("child %v", child)
	}

	got := e.do("GET", "/v3/projects/"+id, e.admin, nil).want(200).obj("project")
	if got["name"] != "web" || got["id"] != id {
		t.Errorf("get %v", got)
	}

	res = e.do("GET", "/v3/projects?name=web", e.admin, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != id {
		t.Errorf("name filter %v", ids)
	}
	if l := res.obj("links"); l["self"] != e.base+"/v3/projects?name=web" || l["next"] != nil || l["previous"] != nil {
		t.Errorf("list links %v", l)
	}
	res = e.do("GET", "/v3/projects?parent_id="+id, e.admin, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != child["id"] {
		t.Errorf("parent_id filter %v", ids)
	}
	res = e.do("GET", "/v3/projects?tags=prod,web", e.admin, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != id {
		t.Errorf("tags filter %v", ids)
	}
	res = e.do("GET", "/v3/projects?not-tags-any=prod&domain_id=default", e.admin, nil).want(200)
	if apiContains(res.ids("projects"), id) {
		t.Errorf("not-tags-any filter kept the tagged project")
	}
	res = e.do("GET", "/v3/projects?enabled=false", e.admin, nil).want(200)
	if len(res.list("projects")) != 0 {
		t.Errorf("enabled=false lists %v", res.ids("projects"))
	}

	upd := e.do("PATCH", "/v3/projects/"+id, e.admin, map[string]any{"project": map[string]any{
		"description": "changed", "enabled": false}}).want(200).obj("project")
	if upd["description"] != "changed" || upd["enabled"] != false || upd["name"] != "web" {
		t.Errorf("update %v", upd)
	}

	// Tags sub-resource.
	res = e.do("GET", "/v3/projects/"+id+"/tags", e.admin, nil).want(200)
	if fmt.Sprint(res.body["tags"]) != "[prod web]" {
		t.Errorf("tags %s", res.raw)
	}
	res = e.do("PUT", "/v3/projects/"+id+"/tags", e.admin, map[string]any{"tags": []string{"a", "b"}}).want(200)
	if fmt.Sprint(res.body["tags"]) != "[a b]" {
		t.Errorf("replaced tags %s", res.raw)
	}
	res = e.do("PUT", "/v3/projects/"+id+"/tags/c", e.admin, nil).want(201)
	if res.header.Get("Location") != e.base+"/v3/projects/"+id+"/tags/c" {
		t.Errorf("Location %q", res.header.Get("Location"))
	}
	e.do("HEAD", "/v3/projects/"+id+"/tags/c", e.admin, nil).want(204)
	e.do("GET", "/v3/projects/"+id+"/tags/c", e.admin, nil).want(204)
	e.do("HEAD", "/v3/projects/"+id+"/tags/zzz", e.admin, nil).want(404)
	e.do("DELETE", "/v3/projects/"+id+"/tags/c", e.admin, nil).want(204)
	e.do("HEAD", "/v3/projects/"+id+"/tags/c", e.admin, nil).want(404)
	e.do("PUT", "/v3/projects/"+id+"/tags", e.admin, map[string]any{"tags": []string{"bad,tag"}}).wantFault(400)
	e.do("PUT", "/v3/projects/"+id+"/tags", e.admin, map[string]any{"tags": []string{"x"}, "other": 1}).wantFault(400)
	e.do("DELETE", "/v3/projects/"+id+"/tags", e.admin, nil).want(204)
	res = e.do("GET", "/v3/projects/"+id+"/tags", e.admin, nil).want(200)
	if fmt.Sprint(res.body["tags"]) != "[]" {
		t.Errorf("tags after delete %s", res.raw)
	}

	e.do("DELETE", "/v3/projects/"+child["id"].(string), e.admin, nil).want(204)
	e.do("DELETE", "/v3/projects/"+id, e.admin, nil).want(204)
	e.do("GET", "/v3/projects/"+id, e.admin, nil).wantFault(404)
	e.do("DELETE", "/v3/projects/"+id, e.admin, nil).wantFault(404)
	e.do("PATCH", "/v3/projects/nope", e.admin, map[string]any{"project": map[string]any{"description": "x"}}).wantFault(404)
}

func TestAPIProjectValidation(t *testing.T) {
	e := newAPIEnv(t)
	e.createProject("taken", nil)
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"malformed JSON", `{"project": {"name": "x"`, 400},
		{"not an object", `[1, 2]`, 400},
		{"missing entity", `{}`, 400},
		{"missing name", map[string]any{"project": map[string]any{"domain_id": "default"}}, 400},
		{"null name", map[string]any{"project": map[string]any{"name": nil}}, 400},
		{"empty name", map[string]any{"project": map[string]any{"name": ""}}, 400},
		{"blank name", map[string]any{"project": map[string]any{"name": "   "}}, 400},
		{"name too long", map[string]any{"project": map[string]any{"name": strings.Repeat("n", 65)}}, 400},
		{"name wrong type", map[string]any{"project": map[string]any{"name": 42}}, 400},
		{"enabled wrong type", map[string]any{"project": map[string]any{"name": "ok1", "enabled": "yes"}}, 400},
		{"tags wrong type", map[string]any{"project": map[string]any{"name": "ok2", "tags": "a"}}, 400},
		{"bad tag", map[string]any{"project": map[string]any{"name": "ok3", "tags": []string{"a/b"}}}, 400},
		{"options not an object", map[string]any{"project": map[string]any{"name": "ok4", "options": []int{1}}}, 400},
		{"unknown top-level key", map[string]any{"project": map[string]any{"name": "ok5"}, "bogus": true}, 400},
		{"unknown parent", map[string]any{"project": map[string]any{"name": "ok6", "parent_id": "nope"}}, 404},
		{"duplicate name", map[string]any{"project": map[string]any{"name": "taken", "domain_id": "default"}}, 409},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.do("POST", "/v3/projects", e.admin, tc.body).wantFault(tc.status)
		})
	}
	e.t = t
	id := e.createProject("patchme", nil)
	for _, body := range []any{
		`{"project": `,
		map[string]any{"project": map[string]any{"name": strings.Repeat("n", 65)}},
		map[string]any{"project": map[string]any{"enabled": "no"}},
		map[string]any{"project": map[string]any{"domain_id": "other"}},
		map[string]any{"project": map[string]any{"name": nil}},
	} {
		e.do("PATCH", "/v3/projects/"+id, e.admin, body).wantFault(400)
	}
	e.do("PATCH", "/v3/projects/"+id, e.admin, map[string]any{"project": map[string]any{"name": "taken"}}).wantFault(409)
}

func TestAPIPagination(t *testing.T) {
	e := newAPIEnv(t)
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		want[e.createProject(fmt.Sprintf("page-%d", i), map[string]any{"tags": []string{"paged"}})] = true
	}
	got := map[string]bool{}
	next := e.base + "/v3/projects?tags=paged&limit=2"
	pages := 0
	for next != "" {
		pages++
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		res := e.do("GET", next, e.admin, nil).want(200)
		items := res.ids("projects")
		if len(items) > 2 {
			t.Fatalf("page of %d items with limit=2", len(items))
		}
		for _, id := range items {
			if got[id] {
				t.Fatalf("project %s on two pages", id)
			}
			got[id] = true
		}
		links := res.obj("links")
		n, _ := links["next"].(string)
		if n != "" {
			u, err := url.Parse(n)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("marker") != items[len(items)-1] || q.Get("limit") != "2" || q.Get("tags") != "paged" {
				t.Errorf("next link %s", n)
			}
			if !strings.HasPrefix(n, e.base+"/v3/projects?") {
				t.Errorf("next link %s not under %s", n, e.base)
			}
		}
		next = n
	}
	if len(got) != len(want) || pages < 3 {
		t.Errorf("read %d projects in %d pages, want %d in 3", len(got), pages, len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("project %s never listed", id)
		}
	}
	e.do("GET", "/v3/projects?limit=abc", e.admin, nil).wantFault(400)
	e.do("GET", "/v3/projects?enabled=maybe", e.admin, nil).wantFault(400)
}

// --- authorization and isolation ---

func TestAPIMemberAuthorization(t *testing.T) {
	e := newAPIEnv(t)
	projA, userA, tokA := e.member("erin")
	projB, userB, tokB := e.member("frank")

	tests := []struct {
		name, method, path string
		body               any
		status             []int
	}{
		{"read own project", "GET", "/v3/projects/" + projA, nil, []int{200}},
		{"create a project", "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "mine"}}, []int{403}},
		{"read another project", "GET", "/v3/projects/" + projB, nil, []int{403}},
		{"update another project", "PATCH", "/v3/projects/" + projB, map[string]any{"project": map[string]any{"name": "stolen"}}, []int{403, 404}},
		{"delete another project", "DELETE", "/v3/projects/" + projB, nil, []int{403, 404}},
		{"tag another project", "PUT", "/v3/projects/" + projB + "/tags/x", nil, []int{403, 404}},
		{"update own project", "PATCH", "/v3/projects/" + projA, map[string]any{"project": map[string]any{"name": "renamed"}}, []int{403}},
		{"list users", "GET", "/v3/users", nil, []int{403}},
		{"read another user", "GET", "/v3/users/" + userB, nil, []int{403, 404}},
		{"create a user", "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "x", "password": "y"}}, []int{403}},
		{"grant itself admin", "PUT", "/v3/projects/" + projA + "/users/" + userA + "/roles/" + e.roleIDs["admin"], nil, []int{403}},
		{"grant itself into B", "PUT", "/v3/projects/" + projB + "/users/" + userA + "/roles/" + e.roleIDs["member"], nil, []int{403, 404}},
		{"create a role", "POST", "/v3/roles", map[string]any{"role": map[string]any{"name": "evil"}}, []int{403}},
		{"create a domain", "POST", "/v3/domains", map[string]any{"domain": map[string]any{"name": "evil"}}, []int{403}},
		{"create an endpoint", "POST", "/v3/endpoints", map[string]any{"endpoint": map[string]any{
			"service_id": "x", "interface": "public", "url": "http://evil.example/"}}, []int{403}},
		{"another user's app credentials", "GET", "/v3/users/" + userB + "/application_credentials", nil, []int{403, 404}},
		{"validate someone else's token", "GET", "/v3/auth/tokens", nil, []int{403, 404}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			var res *apiResp
			if tc.name == "validate someone else's token" {
				res = e.do(tc.method, tc.path, tokA, nil, "X-Subject-Token", tokB)
			} else {
				res = e.do(tc.method, tc.path, tokA, tc.body)
			}
			ok := false
			for _, s := range tc.status {
				ok = ok || res.status == s
			}
			if !ok {
				t.Fatalf("status %d, want one of %v: %s", res.status, tc.status, res.raw)
			}
			if res.status >= 400 {
				res.wantFault(res.status)
			}
		})
	}
	e.t = t

	// Project B is untouched and invisible to A.
	p := e.do("GET", "/v3/projects/"+projB, e.admin, nil).want(200).obj("project")
	if p["name"] != "frank-project" {
		t.Errorf("project B changed: %v", p)
	}
	if tags := e.do("GET", "/v3/projects/"+projB+"/tags", e.admin, nil).want(200).body["tags"]; fmt.Sprint(tags) != "[]" {
		t.Errorf("project B tags changed: %v", tags)
	}
	res := e.do("GET", "/v3/users/"+userA+"/projects", tokA, nil).want(200)
	if ids := res.ids("projects"); len(ids) != 1 || ids[0] != projA {
		t.Errorf("A's projects %v", ids)
	}
	res = e.do("GET", "/v3/role_assignments?scope.project.id="+projB, tokA, nil)
	if res.status == 200 && len(res.list("role_assignments")) != 0 {
		t.Errorf("A sees B's role assignments: %s", res.raw)
	}
	// A reads itself.
	e.do("GET", "/v3/users/"+userA, tokA, nil).want(200)
}

// The last admin cannot lose the admin role or be deleted or disabled.
func TestAPILastAdminProtection(t *testing.T) {
	e := newAPIEnv(t)
	admin, project := e.boot.AdminUserID, e.boot.AdminProject
	grant := "/v3/projects/" + project + "/users/" + admin + "/roles/" + e.roleIDs["admin"]
	e.do("DELETE", grant, e.admin, nil).wantFault(409)
	e.do("DELETE", "/v3/users/"+admin, e.admin, nil).wantFault(409)
	e.do("PATCH", "/v3/users/"+admin, e.admin, map[string]any{"user": map[string]any{"enabled": false}}).wantFault(409)
	e.do("HEAD", grant, e.admin, nil).want(204)
}
