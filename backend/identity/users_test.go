package identity

import (
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestUserLifecycle(t *testing.T) {
	e := newEnv(t)
	p := e.project(t, "home")
	u, err := e.s.CreateUser(e.admin, User{Name: "uma", Email: "uma@example.com", DefaultProjectID: p.ID, Enabled: true}, "uma-password")
	ok(t, err)
	if len(u.ID) != 32 || u.DomainID != DefaultDomainID || u.PasswordSetAt == nil {
		t.Fatalf("created %+v", u)
	}
	_, err = e.s.CreateUser(e.admin, User{Name: "uma", Enabled: true}, "x")
	wantKind(t, err, fault.Conflict)
	if !strings.Contains(fault.Message(err), "Duplicate entry found with name uma at domain ID default") {
		t.Fatal(fault.Message(err))
	}
	bad := []struct {
		name string
		u    User
		pw   string
		kind fault.Kind
	}{
		{"over-long name", User{Name: strings.Repeat("u", 65)}, "pw", fault.Invalid},
		{"no name", User{}, "pw", fault.Invalid},
		{"password over 72 bytes", User{Name: "long"}, strings.Repeat("p", 73), fault.Invalid},
		{"unknown domain", User{Name: "x", DomainID: "nope"}, "pw", fault.NotFound},
		{"unknown default project", User{Name: "x", DefaultProjectID: newID()}, "pw", fault.NotFound},
		{"over-long email", User{Name: "x", Email: strings.Repeat("e", 256)}, "pw", fault.Invalid},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.s.CreateUser(e.admin, c.u, c.pw)
			wantKind(t, err, c.kind)
		})
	}
	// A user without a password exists but cannot log in with one.
	nopw, err := e.s.CreateUser(e.admin, User{Name: "svc", Enabled: true}, "")
	ok(t, err)
	_, err = e.tryLogin(PasswordAuth{UserID: nopw.ID, Password: "anything"}, Scope{})
	wantKind(t, err, fault.Unauthorized)

	got, err := e.s.GetUser(e.admin, u.ID)
	ok(t, err)
	if got.Email != "uma@example.com" || got.DefaultProjectID != p.ID {
		t.Fatalf("got %+v", got)
	}
	up, err := e.s.UpdateUser(e.admin, u.ID, UserUpdate{Description: ptr("d"), Password: ptr("new-uma-pw")})
	ok(t, err)
	if up.Description != "d" || up.Name != "uma" {
		t.Fatalf("updated %+v", up)
	}
	_, err = e.s.UpdateUser(e.admin, u.ID, UserUpdate{Password: ptr("")})
	wantKind(t, err, fault.Invalid)
	_, err = e.s.UpdateUser(e.admin, u.ID, UserUpdate{Name: ptr("admin")})
	wantKind(t, err, fault.Conflict)
	_, err = e.tryLogin(PasswordAuth{UserID: u.ID, Password: "uma-password"}, Scope{})
	wantKind(t, err, fault.Unauthorized)
	e.login(t, PasswordAuth{UserID: u.ID, Password: "new-uma-pw"}, Scope{})

	us, _, err := e.s.ListUsers(e.admin, UserFilter{Name: "uma"})
	ok(t, err)
	if len(us) != 1 {
		t.Fatalf("list by name: %+v", us)
	}
	ok(t, e.s.DeleteUser(e.admin, u.ID))
	_, err = e.s.GetUser(e.admin, u.ID)
	wantKind(t, err, fault.NotFound)
	if fault.Message(err) != "Could not find user: "+u.ID+"." {
		t.Fatal(fault.Message(err))
	}
	wantKind(t, e.s.DeleteUser(e.admin, u.ID), fault.NotFound)
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginMaxFailures = 2 })
	_, u, _, ctx := e.member(t, "cara", "member")
	_, other, _, _ := e.member(t, "dan", "member")
	wantKind(t, e.s.ChangePassword(ctx, other.ID, "dan-password", "x"), fault.Forbidden)
	wantKind(t, e.s.ChangePassword(ctx, u.ID, "cara-password", strings.Repeat("x", 73)), fault.Invalid)
	wantKind(t, e.s.ChangePassword(ctx, u.ID, "wrong", "new-cara-pw"), fault.Unauthorized)
	ok(t, e.s.ChangePassword(ctx, u.ID, "cara-password", "new-cara-pw"))
	e.login(t, PasswordAuth{UserID: u.ID, Password: "new-cara-pw"}, Scope{})
	// Wrong originals count towards the throttle.
	ctx2 := e.ctx(t, e.login(t, PasswordAuth{UserID: u.ID, Password: "new-cara-pw"}, Scope{}))
	wantKind(t, e.s.ChangePassword(ctx2, u.ID, "wrong", "x-pw"), fault.Unauthorized)
	wantKind(t, e.s.ChangePassword(ctx2, u.ID, "wrong", "x-pw"), fault.Unauthorized)
	wantKind(t, e.s.ChangePassword(ctx2, u.ID, "new-cara-pw", "x-pw"), fault.Unauthorized)
}

func TestGroupLifecycle(t *testing.T) {
	e := newEnv(t)
	g, err := e.s.CreateGroup(e.admin, Group{Name: "ops", Description: "operators"})
	ok(t, err)
	_, err = e.s.CreateGroup(e.admin, Group{Name: "ops"})
	wantKind(t, err, fault.Conflict)
	_, err = e.s.CreateGroup(e.admin, Group{Name: strings.Repeat("g", 65)})
	wantKind(t, err, fault.Invalid)
	u := e.user(t, "gus", "gus-pw", "", "")
	ok(t, e.s.AddGroupMember(e.admin, g.ID, u.ID))
	ok(t, e.s.AddGroupMember(e.admin, g.ID, u.ID))
	ok(t, e.s.CheckGroupMember(e.admin, g.ID, u.ID))
	wantKind(t, e.s.AddGroupMember(e.admin, g.ID, newID()), fault.NotFound)
	wantKind(t, e.s.AddGroupMember(e.admin, newID(), u.ID), fault.NotFound)
	members, err := e.s.ListGroupMembers(e.admin, g.ID)
	ok(t, err)
	if len(members) != 1 || members[0].ID != u.ID {
		t.Fatalf("members %+v", members)
	}
	gs, err := e.s.ListUserGroups(e.admin, u.ID)
	ok(t, err)
	if len(gs) != 1 || gs[0].ID != g.ID {
		t.Fatalf("groups %+v", gs)
	}
	up, err := e.s.UpdateGroup(e.admin, g.ID, GroupUpdate{Name: ptr("ops2")})
	ok(t, err)
	if up.Name != "ops2" || up.Description != "operators" {
		t.Fatalf("updated %+v", up)
	}
	ok(t, e.s.RemoveGroupMember(e.admin, g.ID, u.ID))
	wantKind(t, e.s.CheckGroupMember(e.admin, g.ID, u.ID), fault.NotFound)
	wantKind(t, e.s.RemoveGroupMember(e.admin, g.ID, u.ID), fault.NotFound)
	ok(t, e.s.DeleteGroup(e.admin, g.ID))
	_, err = e.s.GetGroup(e.admin, g.ID)
	wantKind(t, err, fault.NotFound)
}

func TestRoleLifecycle(t *testing.T) {
	e := newEnv(t)
	r, err := e.s.CreateRole(e.admin, Role{Name: "auditor"})
	ok(t, err)
	_, err = e.s.CreateRole(e.admin, Role{Name: "auditor"})
	wantKind(t, err, fault.Conflict)
	if fault.Message(err) != "Conflict occurred attempting to store role - Duplicate entry found with name auditor." {
		t.Fatal(fault.Message(err))
	}
	_, err = e.s.CreateRole(e.admin, Role{Name: strings.Repeat("r", 65)})
	wantKind(t, err, fault.Invalid)
	// A domain role may share a global role's name.
	dr, err := e.s.CreateRole(e.admin, Role{Name: "auditor", DomainID: DefaultDomainID})
	ok(t, err)
	rs, _, err := e.s.ListRoles(e.admin, RoleFilter{DomainID: DefaultDomainID})
	ok(t, err)
	if len(rs) != 1 || rs[0].ID != dr.ID {
		t.Fatalf("domain roles %+v", rs)
	}
	up, err := e.s.UpdateRole(e.admin, r.ID, RoleUpdate{Description: ptr("reads logs")})
	ok(t, err)
	if up.Description != "reads logs" || up.Name != "auditor" {
		t.Fatalf("updated %+v", up)
	}

	// Implied roles: auditor implies reader; cycles are refused.
	reader := e.roleID(t, "reader")
	ok(t, e.s.CreateImpliedRole(e.admin, r.ID, reader))
	wantKind(t, e.s.CreateImpliedRole(e.admin, reader, r.ID), fault.Invalid)
	wantKind(t, e.s.CreateImpliedRole(e.admin, r.ID, newID()), fault.NotFound)
	irs, err := e.s.ListImpliedRoles(e.admin)
	ok(t, err)
	if len(irs) != 4 {
		t.Fatalf("implied roles %+v", irs)
	}
	p := e.project(t, "audited")
	u := e.user(t, "audrey", "audrey-pw", p.ID, "auditor")
	tok := e.login(t, PasswordAuth{UserID: u.ID, Password: "audrey-pw"}, Scope{ProjectID: p.ID})
	if !tok.Credentials.HasRole("reader") || !tok.Credentials.HasRole("auditor") || tok.Credentials.HasRole("member") {
		t.Fatalf("roles %v", tok.Credentials.Roles)
	}
	ok(t, e.s.DeleteImpliedRole(e.admin, r.ID, reader))
	if e.valid(tok) {
		t.Fatal("token with a dropped implied role survived")
	}
	wantKind(t, e.s.DeleteImpliedRole(e.admin, r.ID, reader), fault.NotFound)

	ok(t, e.s.DeleteRole(e.admin, r.ID))
	_, err = e.s.GetRole(e.admin, r.ID)
	wantKind(t, err, fault.NotFound)
}

func TestDomainLifecycle(t *testing.T) {
	e := newEnv(t)
	d, err := e.s.CreateDomain(e.admin, Domain{Name: "acme", Enabled: true})
	ok(t, err)
	_, err = e.s.CreateDomain(e.admin, Domain{Name: "acme", Enabled: true})
	wantKind(t, err, fault.Conflict)
	_, err = e.s.CreateDomain(e.admin, Domain{Name: strings.Repeat("d", 65)})
	wantKind(t, err, fault.Invalid)
	ex, err := e.s.CreateDomain(e.admin, Domain{ID: "explicit-id", Name: "explicit"})
	ok(t, err)
	if ex.ID != "explicit-id" {
		t.Fatal(ex.ID)
	}
	_, err = e.s.CreateDomain(e.admin, Domain{ID: "bad/id", Name: "bad"})
	wantKind(t, err, fault.Invalid)

	p, err := e.s.CreateProject(e.admin, Project{Name: "acme-web", DomainID: d.ID, Enabled: true})
	ok(t, err)
	u, err := e.s.CreateUser(e.admin, User{Name: "wile", DomainID: d.ID, Enabled: true}, "wile-pw")
	ok(t, err)
	g, err := e.s.CreateGroup(e.admin, Group{Name: "coyotes", DomainID: d.ID})
	ok(t, err)
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")})
	// Same project name in another domain is fine.
	_, err = e.s.CreateProject(e.admin, Project{Name: "acme-web", Enabled: true})
	ok(t, err)

	wantKind(t, e.s.DeleteDomain(e.admin, d.ID), fault.Forbidden)
	wantKind(t, e.s.DeleteDomain(e.admin, DefaultDomainID), fault.Forbidden)
	_, err = e.s.UpdateDomain(e.admin, d.ID, DomainUpdate{Enabled: ptr(false)})
	ok(t, err)
	ok(t, e.s.DeleteDomain(e.admin, d.ID))
	for _, f := range []func() error{
		func() error { _, err := e.s.GetDomain(e.admin, d.ID); return err },
		func() error { _, err := e.s.GetProject(e.admin, p.ID); return err },
		func() error { _, err := e.s.GetUser(e.admin, u.ID); return err },
		func() error { _, err := e.s.GetGroup(e.admin, g.ID); return err },
	} {
		wantKind(t, f(), fault.NotFound)
	}
	ds, _, err := e.s.ListDomains(e.admin, DomainFilter{})
	ok(t, err)
	if len(ds) != 2 {
		t.Fatalf("domains %+v", ds)
	}
}

func TestLastAdminProtection(t *testing.T) {
	e := newEnv(t)
	adminID, adminProject := e.boot.AdminUserID, e.boot.AdminProject
	adminRole := e.roleID(t, "admin")
	grant := Assignment{ActorType: ActorUser, ActorID: adminID, TargetType: TargetProject, TargetID: adminProject, RoleID: adminRole}
	refused := []struct {
		name string
		f    func() error
	}{
		{"delete the admin", func() error { return e.s.DeleteUser(e.admin, adminID) }},
		{"disable the admin", func() error { _, err := e.s.UpdateUser(e.admin, adminID, UserUpdate{Enabled: ptr(false)}); return err }},
		{"revoke the admin grant", func() error { return e.s.Revoke(e.admin, grant) }},
		{"delete the admin role", func() error { return e.s.DeleteRole(e.admin, adminRole) }},
		{"rename the admin role", func() error { _, err := e.s.UpdateRole(e.admin, adminRole, RoleUpdate{Name: ptr("boss")}); return err }},
		{"delete the admin project", func() error { return e.s.DeleteProject(e.admin, adminProject) }},
		{"disable the admin project", func() error {
			_, err := e.s.UpdateProject(e.admin, adminProject, ProjectUpdate{Enabled: ptr(false)})
			return err
		}},
		{"disable the default domain", func() error {
			_, err := e.s.UpdateDomain(e.admin, DefaultDomainID, DomainUpdate{Enabled: ptr(false)})
			return err
		}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := c.f()
			wantKind(t, err, fault.Conflict)
			if !strings.Contains(fault.Message(err), "last") {
				t.Fatal(fault.Message(err))
			}
			// Nothing changed: the admin still logs in with full rights.
			tok := e.login(t, PasswordAuth{UserID: adminID, Password: testAdminPassword}, Scope{ProjectID: adminProject})
			if !tok.Credentials.IsAdmin() {
				t.Fatal("admin lost the admin role")
			}
			e.admin = e.ctx(t, tok)
		})
	}
	// With a second admin, the first may go.
	second := e.user(t, "admin2", "admin2-pw", adminProject, "admin")
	ok(t, e.s.Revoke(e.admin, grant))
	ctx2 := e.ctx(t, e.login(t, PasswordAuth{UserID: second.ID, Password: "admin2-pw"}, Scope{ProjectID: adminProject}))
	ok(t, e.s.DeleteUser(ctx2, adminID))
	wantKind(t, e.s.DeleteUser(ctx2, second.ID), fault.Conflict)
	// Admin through a group counts too.
	g, err := e.s.CreateGroup(ctx2, Group{Name: "admins"})
	ok(t, err)
	ok(t, e.s.AddGroupMember(ctx2, g.ID, second.ID))
	ok(t, e.s.Grant(ctx2, Assignment{ActorType: ActorGroup, ActorID: g.ID, TargetType: TargetProject, TargetID: adminProject, RoleID: adminRole}))
	ok(t, e.s.Revoke(ctx2, Assignment{ActorType: ActorUser, ActorID: second.ID, TargetType: TargetProject, TargetID: adminProject, RoleID: adminRole}))
	ctx2 = e.ctx(t, e.login(t, PasswordAuth{UserID: second.ID, Password: "admin2-pw"}, Scope{ProjectID: adminProject}))
	wantKind(t, e.s.RemoveGroupMember(ctx2, g.ID, second.ID), fault.Conflict)
	wantKind(t, e.s.DeleteGroup(ctx2, g.ID), fault.Conflict)
}
