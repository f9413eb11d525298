package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/identity"
)

// wantHXDone checks an htmx success: 204, a toast and a reload of <main>.
func wantHXDone(t *testing.T, r resp, path, toast string) {
	t.Helper()
	wantStatus(t, r, http.StatusNoContent)
	var trig map[string]map[string]string
	if err := json.Unmarshal([]byte(r.header.Get("HX-Trigger")), &trig); err != nil {
		t.Fatalf("HX-Trigger %q: %v", r.header.Get("HX-Trigger"), err)
	}
	if trig["nimbus:toast"]["level"] != "success" || !strings.Contains(trig["nimbus:toast"]["message"], toast) {
		t.Fatalf("toast %v, want %q", trig["nimbus:toast"], toast)
	}
	if _, ok := trig["nimbus:modal-close"]; !ok {
		t.Fatalf("no modal-close in %v", trig)
	}
	var loc map[string]string
	if err := json.Unmarshal([]byte(r.header.Get("HX-Location")), &loc); err != nil {
		t.Fatalf("HX-Location %q: %v", r.header.Get("HX-Location"), err)
	}
	if loc["path"] != path || loc["target"] != "#main" {
		t.Fatalf("HX-Location %v, want path %s", loc, path)
	}
}

// wantRedirect checks a plain success: 303 to path.
func wantRedirect(t *testing.T, r resp, path string) {
	t.Helper()
	wantStatus(t, r, http.StatusSeeOther)
	if got := r.header.Get("Location"); got != path {
		t.Fatalf("Location %q, want %q", got, path)
	}
}

func TestProjectFlows(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()

	// Create, plain: 303 to the list, which shows the flash once.
	r := c.post("/identity-admin/projects", url.Values{"name": {"alpha"}, "description": {"first"}, "enabled": {"true"}})
	wantRedirect(t, r, "/identity-admin/projects")
	list := c.get("/identity-admin/projects")
	wantContains(t, list, "Project “alpha” created.", "alpha", "first", "Enabled")
	wantNotContains(t, c.get("/identity-admin/projects"), "Project “alpha” created.")
	alpha := e.findProject("alpha")
	if alpha == nil || !alpha.Enabled || alpha.Description != "first" {
		t.Fatalf("project %+v", alpha)
	}

	// Create, htmx.
	r = c.post("/identity-admin/projects", url.Values{"name": {"beta"}}, hx)
	wantHXDone(t, r, "/identity-admin/projects", "Project “beta” created.")
	if b := e.findProject("beta"); b == nil || b.Enabled {
		t.Fatalf("beta %+v (the unticked box means disabled)", b)
	}

	// Validation: inline, 422, full page without htmx and the form alone with it.
	r = c.post("/identity-admin/projects", url.Values{"name": {"  "}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !isFullPage(r.body) {
		t.Fatal("plain validation error is not a full page")
	}
	wantContains(t, r, "Enter a name for the project.", `aria-invalid="true"`, `id="f-name-error"`)
	r = c.post("/identity-admin/projects", url.Values{"name": {""}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if isFullPage(r.body) || !strings.HasPrefix(strings.TrimSpace(r.body), `<form`) {
		t.Fatalf("htmx validation error is not the form alone:\n%s", r.body)
	}
	wantContains(t, r, "Enter a name for the project.")
	// A service refusal (duplicate name) is shown in the form in the user's words.
	r = c.post("/identity-admin/projects", url.Values{"name": {"alpha"}, "description": {"kept"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error", "kept")
	r = c.post("/identity-admin/projects", url.Values{"name": {strings.Repeat("x", 65)}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "field-error")

	// Edit.
	r = c.post("/identity-admin/projects/"+alpha.ID, url.Values{"name": {"alpha2"}, "description": {"changed"}, "enabled": {"true"}})
	wantRedirect(t, r, "/identity-admin/projects")
	if p := e.findProject("alpha2"); p == nil || p.Description != "changed" {
		t.Fatalf("after edit %+v", p)
	}
	r = c.post("/identity-admin/projects/"+alpha.ID, url.Values{"name": {""}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)

	// Disable (after confirmation) and enable.
	r = c.post("/identity-admin/projects/"+alpha.ID+"/disable", nil, hx)
	wantHXDone(t, r, "/identity-admin/projects", "disabled")
	if p, _ := e.id.GetProject(e.adminCtx(), alpha.ID); p.Enabled {
		t.Fatal("still enabled")
	}
	wantContains(t, c.get("/identity-admin/projects"), "Disabled", "/identity-admin/projects/"+alpha.ID+"/enable")
	r = c.post("/identity-admin/projects/"+alpha.ID+"/enable", nil)
	wantRedirect(t, r, "/identity-admin/projects")
	if p, _ := e.id.GetProject(e.adminCtx(), alpha.ID); !p.Enabled {
		t.Fatal("still disabled")
	}

	// Delete.
	r = c.post("/identity-admin/projects/"+alpha.ID+"/delete", nil, hx)
	wantHXDone(t, r, "/identity-admin/projects", "Project deleted.")
	if e.findProject("alpha2") != nil {
		t.Fatal("not deleted")
	}
	// Deleting it again: the confirmation is re-rendered with the fault.
	r = c.post("/identity-admin/projects/"+alpha.ID+"/delete", nil, hx)
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r, "alert-error")
	// An htmx action without a form (Enable) fails with a toast and no swap.
	r = c.post("/identity-admin/projects/"+alpha.ID+"/enable", nil, hx)
	wantStatus(t, r, http.StatusNotFound)
	if r.header.Get("HX-Reswap") != "none" || !strings.Contains(r.header.Get("HX-Trigger"), `"level":"error"`) {
		t.Fatalf("headers %v", r.header)
	}
}

func TestProjectMembership(t *testing.T) {
	e := newEnv(t)
	p := e.createProject("team")
	u := e.createMember("henry", "henry-Password-1")
	g, err := e.id.CreateGroup(e.adminCtx(), identity.Group{Name: "devs", DomainID: identity.DefaultDomainID})
	if err != nil {
		t.Fatal(err)
	}
	c := e.adminClient()
	members := "/identity-admin/projects/" + p.ID + "/members"

	r := c.post(members, url.Values{"actor": {""}, "role_id": {e.member}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose a user or group.", "Members of team")
	r = c.post(members, url.Values{"actor": {"robot:x"}, "role_id": {e.member}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if isFullPage(r.body) {
		t.Fatal("htmx error got a full page")
	}
	wantContains(t, r, `id="member-form"`, "Choose a user or group.")

	r = c.post(members, url.Values{"actor": {"user:" + u.ID}, "role_id": {e.member}}, hx)
	wantHXDone(t, r, members, "Member added.")
	r = c.post(members, url.Values{"actor": {"group:" + g.ID}, "role_id": {e.member}})
	wantRedirect(t, r, members)

	page := c.get(members)
	wantContains(t, page, "henry", "devs", ">member<", "Member added.")
	as, err := e.id.ListRoleAssignments(e.adminCtx(), identity.AssignmentFilter{ProjectID: p.ID})
	if err != nil || len(as) != 2 {
		t.Fatalf("assignments %v %v", as, err)
	}

	// Henry can now sign in to the project.
	hc := e.client()
	hc.login("henry", "henry-Password-1")
	wantContains(t, hc.get("/project/overview"), p.ID)

	r = c.post(members+"/remove", url.Values{"actor": {"user:" + u.ID}, "role_id": {e.member}}, hx)
	wantHXDone(t, r, members, "Member removed.")
	r = c.post(members+"/remove", url.Values{"actor": {"group:" + g.ID}, "role_id": {e.member}})
	wantRedirect(t, r, members)
	as, _ = e.id.ListRoleAssignments(e.adminCtx(), identity.AssignmentFilter{ProjectID: p.ID})
	if len(as) != 0 {
		t.Fatalf("assignments left: %v", as)
	}
	// Removing Henry's only role ended his session.
	wantStatus(t, hc.get("/project/overview"), http.StatusSeeOther)
}

func TestUserFlows(t *testing.T) {
	e := newEnv(t)
	p := e.createProject("home")
	c := e.adminClient()

	r := c.post("/identity-admin/users", url.Values{
		"name": {"ivy"}, "password": {"ivy-Password-1"}, "confirm_password": {"other"}, "project_id": {p.ID}, "role_id": {e.member},
	}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "The passwords do not match.", `id="user-form"`, `value="ivy"`)
	wantNotContains(t, r, "ivy-Password-1")
	r = c.post("/identity-admin/users", url.Values{"name": {""}, "password": {""}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Enter a name for the user.", "Enter a password.")
	// Without a primary project the role choice has nothing to apply to.
	r = c.post("/identity-admin/users", url.Values{"name": {"loner"}, "password": {"pw-Password-1"}, "confirm_password": {"pw-Password-1"}, "role_id": {e.member}})
	wantRedirect(t, r, "/identity-admin/users")
	loners, _, _ := e.id.ListUsers(e.adminCtx(), identity.UserFilter{Name: "loner"})
	if len(loners) != 1 {
		t.Fatalf("loner %+v", loners)
	}
	if as, _ := e.id.ListRoleAssignments(e.adminCtx(), identity.AssignmentFilter{UserID: loners[0].ID}); len(as) != 0 {
		t.Fatalf("loner has roles: %+v", as)
	}

	r = c.post("/identity-admin/users", url.Values{
		"name": {"ivy"}, "email": {"ivy@example.com"}, "password": {"ivy-Password-1"}, "confirm_password": {"ivy-Password-1"},
		"project_id": {p.ID}, "role_id": {e.member}, "enabled": {"true"},
	}, hx)
	wantHXDone(t, r, "/identity-admin/users", "User “ivy” created.")
	us, _, _ := e.id.ListUsers(e.adminCtx(), identity.UserFilter{Name: "ivy"})
	if len(us) != 1 || us[0].Email != "ivy@example.com" || us[0].DefaultProjectID != p.ID || !us[0].Enabled {
		t.Fatalf("users %+v", us)
	}
	ivy := us[0]
	list := c.get("/identity-admin/users")
	wantContains(t, list, "ivy@example.com", ">home<")

	ic := e.client()
	ic.login("ivy", "ivy-Password-1")
	wantContains(t, ic.get("/project/overview"), p.ID)

	// Duplicate name: the service's conflict in the form.
	r = c.post("/identity-admin/users", url.Values{"name": {"ivy"}, "password": {"pw-Password-1"}, "confirm_password": {"pw-Password-1"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")

	// Edit.
	r = c.post("/identity-admin/users/"+ivy.ID, url.Values{"name": {"ivy"}, "email": {"ivy@new.example"}, "project_id": {p.ID}})
	wantRedirect(t, r, "/identity-admin/users")
	if u, _ := e.id.GetUser(e.adminCtx(), ivy.ID); u.Email != "ivy@new.example" {
		t.Fatalf("email %q", u.Email)
	}

	// Password.
	r = c.post("/identity-admin/users/"+ivy.ID+"/password", url.Values{"password": {"a"}, "confirm_password": {"b"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "The passwords do not match.")
	r = c.post("/identity-admin/users/"+ivy.ID+"/password", url.Values{"password": {"ivy-New-Password-2"}, "confirm_password": {"ivy-New-Password-2"}})
	wantRedirect(t, r, "/identity-admin/users")
	ic2 := e.client()
	ic2.login("ivy", "ivy-New-Password-2")

	// Disable: sessions end, login fails; enable again.
	r = c.post("/identity-admin/users/"+ivy.ID+"/disable", nil, hx)
	wantHXDone(t, r, "/identity-admin/users", "disabled")
	wantStatus(t, ic2.get("/project/overview"), http.StatusSeeOther)
	if r := e.client().tryLogin("ivy", "ivy-New-Password-2", ""); r.status == http.StatusSeeOther {
		t.Fatal("a disabled user signed in")
	}
	r = c.post("/identity-admin/users/"+ivy.ID+"/enable", nil, hx)
	wantHXDone(t, r, "/identity-admin/users", "enabled")
	e.client().login("ivy", "ivy-New-Password-2")

	// The admin cannot disable or delete themself here.
	admins, _, _ := e.id.ListUsers(e.adminCtx(), identity.UserFilter{Name: "admin"})
	r = c.post("/identity-admin/users/"+admins[0].ID+"/delete", nil)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "You cannot disable or delete the user you are signed in as.")
	r = c.post("/identity-admin/users/"+admins[0].ID+"/disable", nil, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)

	// Delete.
	r = c.post("/identity-admin/users/"+ivy.ID+"/delete", nil)
	wantRedirect(t, r, "/identity-admin/users")
	if _, err := e.id.GetUser(e.adminCtx(), ivy.ID); err == nil {
		t.Fatal("user not deleted")
	}
}

func TestGroupFlows(t *testing.T) {
	e := newEnv(t)
	u := e.createMember("jack", "jack-Password-1")
	c := e.adminClient()

	r := c.post("/identity-admin/groups", url.Values{"name": {""}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Enter a name for the group.")
	r = c.post("/identity-admin/groups", url.Values{"name": {"ops"}, "description": {"operators"}}, hx)
	wantHXDone(t, r, "/identity-admin/groups", "Group “ops” created.")
	gs, _, _ := e.id.ListGroups(e.adminCtx(), identity.GroupFilter{Name: "ops"})
	if len(gs) != 1 {
		t.Fatalf("groups %+v", gs)
	}
	g := gs[0]
	wantContains(t, c.get("/identity-admin/groups"), "ops", "operators")

	r = c.post("/identity-admin/groups/"+g.ID, url.Values{"name": {"ops2"}, "description": {"renamed"}})
	wantRedirect(t, r, "/identity-admin/groups")
	if got, _ := e.id.GetGroup(e.adminCtx(), g.ID); got.Name != "ops2" {
		t.Fatalf("group %+v", got)
	}

	members := "/identity-admin/groups/" + g.ID + "/members"
	r = c.post(members, url.Values{"user_id": {""}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Choose a user.", `id="group-member-form"`)
	r = c.post(members, url.Values{"user_id": {u.ID}}, hx)
	wantHXDone(t, r, members, "User added to the group.")
	page := c.get(members)
	wantContains(t, page, "jack", "/identity-admin/groups/"+g.ID+"/members/"+u.ID+"/remove")
	ms, _ := e.id.ListGroupMembers(e.adminCtx(), g.ID)
	if len(ms) != 1 {
		t.Fatalf("members %+v", ms)
	}
	r = c.post(members+"/"+u.ID+"/remove", nil)
	wantRedirect(t, r, members)
	ms, _ = e.id.ListGroupMembers(e.adminCtx(), g.ID)
	if len(ms) != 0 {
		t.Fatalf("members %+v", ms)
	}

	r = c.post("/identity-admin/groups/"+g.ID+"/delete", nil, hx)
	wantHXDone(t, r, "/identity-admin/groups", "Group deleted.")
	if _, err := e.id.GetGroup(e.adminCtx(), g.ID); err == nil {
		t.Fatal("group not deleted")
	}
}

func TestRoleFlows(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()

	r := c.post("/identity-admin/roles", url.Values{"name": {""}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Enter a name for the role.")
	r = c.post("/identity-admin/roles", url.Values{"name": {"auditor"}, "description": {"reads logs"}})
	wantRedirect(t, r, "/identity-admin/roles")
	wantContains(t, c.get("/identity-admin/roles"), "auditor", "reads logs", "Role “auditor” created.")
	rs, _, _ := e.id.ListRoles(e.adminCtx(), identity.RoleFilter{Name: "auditor"})
	if len(rs) != 1 {
		t.Fatalf("roles %+v", rs)
	}
	role := rs[0]
	r = c.post("/identity-admin/roles", url.Values{"name": {"auditor"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")

	r = c.post("/identity-admin/roles/"+role.ID, url.Values{"name": {"auditor2"}, "description": {"x"}}, hx)
	wantHXDone(t, r, "/identity-admin/roles", "Role “auditor2” saved.")
	r = c.post("/identity-admin/roles/"+role.ID+"/delete", nil, hx)
	wantHXDone(t, r, "/identity-admin/roles", "Role deleted.")
	if _, err := e.id.GetRole(e.adminCtx(), role.ID); err == nil {
		t.Fatal("role not deleted")
	}
}
