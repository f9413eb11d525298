package identity

import (
	"slices"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestEffectiveAssignments(t *testing.T) {
	e := newEnv(t)
	p := e.project(t, "shared")
	sub, err := e.s.CreateProject(e.admin, Project{Name: "shared-sub", ParentID: p.ID, Enabled: true})
	ok(t, err)
	u := e.user(t, "gina", "gina-pw", "", "")
	g, err := e.s.CreateGroup(e.admin, Group{Name: "devs"})
	ok(t, err)
	ok(t, e.s.AddGroupMember(e.admin, g.ID, u.ID))
	member, reader := e.roleID(t, "member"), e.roleID(t, "reader")
	e.grant(t, Assignment{ActorType: ActorGroup, ActorID: g.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: member})

	// The group's role lets its member in.
	tok := e.login(t, PasswordAuth{UserID: u.ID, Password: "gina-pw"}, Scope{ProjectID: p.ID})
	if !slices.Equal(tok.Credentials.Roles, []string{"member", "reader"}) {
		t.Fatalf("roles %v", tok.Credentials.Roles)
	}
	_, err = e.tryLogin(PasswordAuth{UserID: u.ID, Password: "gina-pw"}, Scope{ProjectID: sub.ID})
	wantKind(t, err, fault.Unauthorized)

	// Stored rows: the group's, not the user's.
	as, err := e.s.ListRoleAssignments(e.admin, AssignmentFilter{ProjectID: p.ID})
	ok(t, err)
	if len(as) != 1 || as[0].ActorType != ActorGroup {
		t.Fatalf("stored %+v", as)
	}
	// Effective: the user's, via the group, with the implied reader.
	as, err = e.s.ListRoleAssignments(e.admin, AssignmentFilter{UserID: u.ID, Effective: true, IncludeNames: true})
	ok(t, err)
	if len(as) != 2 {
		t.Fatalf("effective %+v", as)
	}
	for _, a := range as {
		if a.ActorType != ActorUser || a.ActorID != u.ID || a.ViaGroupID != g.ID || a.TargetID != p.ID ||
			a.ActorName != "gina" || a.TargetName != "shared" || a.TargetDomainName != "Default" ||
			(a.RoleName != "member" && a.RoleName != "reader") {
			t.Fatalf("effective row %+v", a)
		}
	}
	as, err = e.s.ListRoleAssignments(e.admin, AssignmentFilter{UserID: u.ID, Effective: true, RoleID: reader})
	ok(t, err)
	if len(as) != 1 || as[0].RoleID != reader {
		t.Fatalf("effective reader %+v", as)
	}
	_, err = e.s.ListRoleAssignments(e.admin, AssignmentFilter{GroupID: g.ID, Effective: true})
	wantKind(t, err, fault.Invalid)

	// An inherited grant on the parent reaches the child, not the parent.
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: reader, Inherited: true})
	subTok := e.login(t, PasswordAuth{UserID: u.ID, Password: "gina-pw"}, Scope{ProjectID: sub.ID})
	if !slices.Equal(subTok.Credentials.Roles, []string{"reader"}) {
		t.Fatalf("inherited roles %v", subTok.Credentials.Roles)
	}
	as, err = e.s.ListRoleAssignments(e.admin, AssignmentFilter{ProjectID: sub.ID, Effective: true})
	ok(t, err)
	if len(as) != 1 || as[0].ActorID != u.ID || as[0].Inherited {
		t.Fatalf("effective on child %+v", as)
	}
	// An inherited domain grant reaches every project of the domain.
	other := e.project(t, "elsewhere")
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetDomain, TargetID: DefaultDomainID, RoleID: reader, Inherited: true})
	e.login(t, PasswordAuth{UserID: u.ID, Password: "gina-pw"}, Scope{ProjectID: other.ID})
	ps, err := e.s.ListUserProjects(e.admin, u.ID)
	ok(t, err)
	if len(ps) < 4 {
		t.Fatalf("user projects %d", len(ps))
	}
	// Revoking the inherited grant revokes the tokens it made possible.
	ok(t, e.s.Revoke(e.admin, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: reader, Inherited: true}))
	if e.valid(subTok) {
		t.Fatal("token from an inherited grant survived its revocation")
	}

	// Grants: checks and mistakes.
	a := Assignment{ActorType: ActorGroup, ActorID: g.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: member}
	ok(t, e.s.CheckGrant(e.admin, a))
	a.RoleID = reader
	wantKind(t, e.s.CheckGrant(e.admin, a), fault.NotFound)
	wantKind(t, e.s.Revoke(e.admin, a), fault.NotFound)
	for _, bad := range []Assignment{
		{ActorType: ActorUser, ActorID: newID(), TargetType: TargetProject, TargetID: p.ID, RoleID: member},
		{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: newID(), RoleID: member},
		{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: newID()},
		{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetSystem, TargetID: "nope", RoleID: member},
	} {
		wantKind(t, e.s.Grant(e.admin, bad), fault.NotFound)
	}
	wantKind(t, e.s.Grant(e.admin, Assignment{ActorType: "robot", ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: member}), fault.Invalid)
}

func TestProjectManagerGrants(t *testing.T) {
	e := newEnv(t)
	p, _, _, mctx := e.member(t, "mona", "project_manager")
	q := e.project(t, "not-mine")
	u := e.user(t, "newbie", "newbie-pw", "", "")
	grant := func(role, project string) Assignment {
		return Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: project, RoleID: e.roleID(t, role)}
	}
	ok(t, e.s.Grant(mctx, grant("member", p.ID)))
	ok(t, e.s.Grant(mctx, grant("reader", p.ID)))
	ok(t, e.s.CheckGrant(mctx, grant("member", p.ID)))
	ok(t, e.s.Revoke(mctx, grant("reader", p.ID)))
	for _, c := range []struct {
		name string
		a    Assignment
	}{
		{"admin on own project", grant("admin", p.ID)},
		{"manager on own project", grant("project_manager", p.ID)},
		{"member on another project", grant("member", q.ID)},
		{"on the system", Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetSystem, TargetID: SystemAll, RoleID: e.roleID(t, "member")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantKind(t, e.s.Grant(mctx, c.a), fault.Forbidden)
			wantKind(t, e.s.Revoke(mctx, c.a), fault.Forbidden)
		})
	}
	// The manager sees the assignments on its project, and so does a reader.
	as, err := e.s.ListRoleAssignments(mctx, AssignmentFilter{ProjectID: p.ID})
	ok(t, err)
	if len(as) != 2 {
		t.Fatalf("assignments %+v", as)
	}
	readerCtx := e.ctx(t, e.login(t, PasswordAuth{UserID: u.ID, Password: "newbie-pw"}, Scope{ProjectID: p.ID}))
	_, err = e.s.ListRoleAssignments(readerCtx, AssignmentFilter{ProjectID: p.ID})
	ok(t, err)
	_, err = e.s.ListRoleAssignments(mctx, AssignmentFilter{ProjectID: q.ID})
	wantKind(t, err, fault.Forbidden)
	wantKind(t, e.s.Grant(readerCtx, grant("reader", p.ID)), fault.Forbidden)
	// Managers may read the role list to pick from.
	rs, _, err := e.s.ListRoles(mctx, RoleFilter{})
	ok(t, err)
	if len(rs) != len(bootstrapRoles) {
		t.Fatalf("roles %+v", rs)
	}
}
