package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/identity"
)

// fixtures creates one of everything the identity pages show.
type fixtures struct {
	project *identity.Project
	user    *identity.User
	group   *identity.Group
	role    string
}

func (e *env) fixtures() fixtures {
	e.t.Helper()
	p := e.createProject("web")
	u := e.createMember("frank", "frank-Password-1", p)
	g, err := e.id.CreateGroup(e.adminCtx(), identity.Group{Name: "ops", DomainID: identity.DefaultDomainID})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.id.AddGroupMember(e.adminCtx(), g.ID, u.ID); err != nil {
		e.t.Fatal(err)
	}
	return fixtures{project: p, user: u, group: g, role: e.member}
}

func TestEveryPageFullAndFragment(t *testing.T) {
	e := newEnv(t)
	f := e.fixtures()
	c := e.adminClient()
	pid, uid, gid := f.project.ID, f.user.ID, f.group.ID
	pages := []struct {
		path   string
		marker string
		modal  bool
	}{
		{"/project/overview", "API access", false},
		{"/admin/system", "System information", false},
		{"/identity-admin/projects", "Create project", false},
		{"/identity-admin/projects?q=we", `data-id="` + pid + `"`, false},
		{"/identity-admin/projects/new", `id="project-form"`, true},
		{"/identity-admin/projects/" + pid + "/edit", `value="web"`, true},
		{"/identity-admin/projects/" + pid + "/disable", "Disable the project", true},
		{"/identity-admin/projects/" + pid + "/delete", "Delete the project", true},
		{"/identity-admin/projects/" + pid + "/members", "Members of web", false},
		{"/identity-admin/projects/" + pid + "/members/remove?actor=user:" + uid + "&role=" + f.role, "Remove the role", true},
		{"/identity-admin/users", `data-id="` + uid + `"`, false},
		{"/identity-admin/users?q=fra", `data-id="` + uid + `"`, false},
		{"/identity-admin/users/new", `id="user-form"`, true},
		{"/identity-admin/users/" + uid + "/edit", `value="frank"`, true},
		{"/identity-admin/users/" + uid + "/password", `id="password-form"`, true},
		{"/identity-admin/users/" + uid + "/disable", "Disable the user", true},
		{"/identity-admin/users/" + uid + "/delete", "Delete the user", true},
		{"/identity-admin/groups", `data-id="` + gid + `"`, false},
		{"/identity-admin/groups/new", `id="group-form"`, true},
		{"/identity-admin/groups/" + gid + "/edit", `value="ops"`, true},
		{"/identity-admin/groups/" + gid + "/delete", "Delete the group", true},
		{"/identity-admin/groups/" + gid + "/members", "Members of ops", false},
		{"/identity-admin/groups/" + gid + "/members/" + uid + "/remove", "Remove from this group", true},
		{"/identity-admin/roles", `data-id="` + f.role + `"`, false},
		{"/identity-admin/roles/new", `id="role-form"`, true},
		{"/identity-admin/roles/" + f.role + "/edit", `value="member"`, true},
		{"/identity-admin/roles/" + f.role + "/delete", "Delete the role", true},
	}
	for _, pg := range pages {
		t.Run(pg.path, func(t *testing.T) {
			full := c.get(pg.path)
			wantStatus(t, full, http.StatusOK)
			if !isFullPage(full.body) {
				t.Fatal("plain request did not get a full page")
			}
			wantContains(t, full, pg.marker, `id="sidenav"`, `id="modal"`, `<meta name="csrf-token"`)

			o := hx
			if pg.modal {
				o = hxTargetModal
			}
			frag := c.get(pg.path, o)
			wantStatus(t, frag, http.StatusOK)
			if isFullPage(frag.body) {
				t.Fatal("htmx request got a full page")
			}
			wantContains(t, frag, pg.marker)
			wantNotContains(t, frag, `id="sidenav"`)
			if pg.modal {
				wantContains(t, frag, `id="modal-title"`, "data-close-modal")
			}
			if !strings.Contains(frag.header.Get("Vary"), "HX-Request") {
				t.Fatalf("Vary %q", frag.header.Get("Vary"))
			}
		})
	}
	// Redirects and the 404 page.
	for path, want := range map[string]string{
		"/":               "/project/overview",
		"/project":        "/project/overview",
		"/identity-admin": "/identity-admin/projects",
		"/admin":          "/admin/system",
	} {
		r := c.get(path)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Fatalf("%s: %d %q", path, r.status, r.header.Get("Location"))
		}
	}
	nf := c.get("/identity-admin/projects/does-not-exist/edit")
	wantStatus(t, nf, http.StatusNotFound)
	nf = c.get("/identity-admin/projects/does-not-exist/edit", hxTargetModal)
	wantStatus(t, nf, http.StatusNotFound)
	wantContains(t, nf, `id="modal-title"`)
	nf = c.get("/no/such/page")
	wantStatus(t, nf, http.StatusNotFound)
	wantContains(t, nf, "There is no page at this address.")
}

func TestEmptyStates(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	r := c.get("/identity-admin/groups")
	wantContains(t, r, "No groups yet", "Create a group, add users to it")
	r = c.get("/identity-admin/projects?q=zzz-nothing")
	wantContains(t, r, "No matching projects", "Clear the filter")
	p := e.createProject("lonely")
	r = c.get("/identity-admin/projects/" + p.ID + "/members")
	wantContains(t, r, "No members yet")
}

func TestMemberForbiddenFromAdminPages(t *testing.T) {
	e := newEnv(t)
	f := e.fixtures()
	c := e.client()
	c.login("frank", "frank-Password-1")
	ov := c.get("/project/overview")
	wantStatus(t, ov, http.StatusOK)
	wantNotContains(t, ov, `id="nav-identity"`, `id="nav-admin"`, "/identity-admin/")
	for _, path := range []string{
		"/admin/system",
		"/identity-admin/projects",
		"/identity-admin/projects/new",
		"/identity-admin/projects/" + f.project.ID + "/members",
		"/identity-admin/users",
		"/identity-admin/groups",
		"/identity-admin/roles",
	} {
		r := c.get(path)
		wantStatus(t, r, http.StatusForbidden)
		wantContains(t, r, "Not allowed", `id="sidenav"`)
		r = c.get(path, hx)
		wantStatus(t, r, http.StatusForbidden)
	}
	r := c.post("/identity-admin/projects", url.Values{"name": {"sneaky"}, "enabled": {"true"}})
	wantStatus(t, r, http.StatusForbidden)
	r = c.post("/identity-admin/users/"+f.user.ID+"/delete", nil, hx)
	wantStatus(t, r, http.StatusForbidden)
	if e.findProject("sneaky") != nil {
		t.Fatal("a member created a project")
	}
}

func TestOverviewAndOpenRC(t *testing.T) {
	e := newEnv(t)
	p := e.createProject("it's $HOME")
	e.createMember("gina", "gina-Password-1", p)
	c := e.client()
	c.login("gina", "gina-Password-1")

	ov := c.get("/project/overview")
	wantContains(t, ov, "it&#39;s $HOME", p.ID, `class="badge badge-role">member<`, "http://test/identity", `href="/project/api-access/openrc"`)

	r := c.get("/project/api-access/openrc")
	wantStatus(t, r, http.StatusOK)
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="it_s_HOME-openrc.sh"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
	for _, line := range []string{
		"export OS_AUTH_URL='http://test/identity/v3'\n",
		"export OS_IDENTITY_API_VERSION='3'\n",
		"export OS_PROJECT_ID='" + p.ID + "'\n",
		`export OS_PROJECT_NAME='it'\''s $HOME'` + "\n",
		"export OS_PROJECT_DOMAIN_ID='default'\n",
		"export OS_USER_DOMAIN_NAME='Default'\n",
		"export OS_USERNAME='gina'\n",
		"read -sr OS_PASSWORD_INPUT\n",
	} {
		if !strings.Contains(r.body, line) {
			t.Fatalf("openrc lacks %q:\n%s", line, r.body)
		}
	}
	if strings.Contains(r.body, "gina-Password-1") {
		t.Fatal("the openrc contains the password")
	}
}

func TestSystemInformation(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	r := c.get("/admin/system")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "keystone", "identity", "http://test/identity", "RegionOne")
}

func TestSessionFollowsTokenExpiry(t *testing.T) {
	e := newEnv(t)
	c := e.adminClient()
	ctx, err := e.web.sm.Load(context.Background(), c.sessionCookie())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.id.ValidateToken(context.Background(), e.web.sm.GetString(ctx, keyToken))
	if err != nil {
		t.Fatal(err)
	}
	if d := e.web.sm.Deadline(ctx).Sub(creds.ExpiresAt); d < -2e9 || d > 2e9 {
		t.Fatalf("session deadline %v, token expires %v", e.web.sm.Deadline(ctx), creds.ExpiresAt)
	}
	if got := e.web.sm.GetInt64(ctx, keyExpiresAt); got != creds.ExpiresAt.Unix() {
		t.Fatalf("stored expiry %d, token %d", got, creds.ExpiresAt.Unix())
	}
	for _, k := range []string{keyToken, keyUserID, keyUserName, keyProjectID, keyProjectName, keyCSRF} {
		if e.web.sm.GetString(ctx, k) == "" {
			t.Errorf("session lacks %s", k)
		}
	}
}
