package identity

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestProjectLifecycle(t *testing.T) {
	e := newEnv(t)
	p, err := e.s.CreateProject(e.admin, Project{Name: "web", Description: "front", Enabled: true, Tags: []string{"b", "a"}})
	ok(t, err)
	if len(p.ID) != 32 || p.DomainID != DefaultDomainID || p.CreatedAt.IsZero() {
		t.Fatalf("created %+v", p)
	}
	got, err := e.s.GetProject(e.admin, p.ID)
	ok(t, err)
	if got.Name != "web" || got.Description != "front" || !slices.Equal(got.Tags, []string{"a", "b"}) {
		t.Fatalf("got %+v", got)
	}

	_, err = e.s.CreateProject(e.admin, Project{Name: "web", Enabled: true})
	wantKind(t, err, fault.Conflict)
	if want := "Conflict occurred attempting to store project - Duplicate entry found with name web at domain ID default."; fault.Message(err) != want {
		t.Fatalf("message %q", fault.Message(err))
	}
	bad := []struct {
		name string
		p    Project
		kind fault.Kind
	}{
		{"over-long name", Project{Name: strings.Repeat("n", 65)}, fault.Invalid},
		{"empty name", Project{Name: ""}, fault.Invalid},
		{"blank name", Project{Name: "   "}, fault.Invalid},
		{"control character", Project{Name: "a\nb"}, fault.Invalid},
		{"bad tag", Project{Name: "tagged", Tags: []string{"a/b"}}, fault.Invalid},
		{"unknown domain", Project{Name: "x", DomainID: "nope"}, fault.NotFound},
		{"unknown parent", Project{Name: "x", ParentID: newID()}, fault.NotFound},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.s.CreateProject(e.admin, c.p)
			wantKind(t, err, c.kind)
		})
	}
	_, err = e.s.CreateProject(e.admin, Project{Name: strings.Repeat("n", 64), Enabled: true})
	ok(t, err)

	up, err := e.s.UpdateProject(e.admin, p.ID, ProjectUpdate{Name: ptr("web2"), Tags: &[]string{"z"}})
	ok(t, err)
	if up.Name != "web2" || up.Description != "front" || !slices.Equal(up.Tags, []string{"z"}) {
		t.Fatalf("updated %+v", up)
	}
	_, err = e.s.UpdateProject(e.admin, p.ID, ProjectUpdate{Name: ptr(strings.Repeat("x", 65))})
	wantKind(t, err, fault.Invalid)
	_, err = e.s.UpdateProject(e.admin, p.ID, ProjectUpdate{Name: ptr("admin")})
	wantKind(t, err, fault.Conflict)
	_, err = e.s.UpdateProject(e.admin, newID(), ProjectUpdate{Name: ptr("x")})
	wantKind(t, err, fault.NotFound)

	// A parent cannot go before its children; deleting cleans up assignments.
	child, err := e.s.CreateProject(e.admin, Project{Name: "child", ParentID: p.ID, Enabled: true})
	ok(t, err)
	if child.DomainID != DefaultDomainID {
		t.Fatalf("child domain %q", child.DomainID)
	}
	wantKind(t, e.s.DeleteProject(e.admin, p.ID), fault.Forbidden)
	u := e.user(t, "worker", "worker-pw", child.ID, "member")
	ok(t, e.s.DeleteProject(e.admin, child.ID))
	as, err := e.s.ListRoleAssignments(e.admin, AssignmentFilter{UserID: u.ID})
	ok(t, err)
	if len(as) != 0 {
		t.Fatalf("assignments left behind: %+v", as)
	}
	ok(t, e.s.DeleteProject(e.admin, p.ID))
	_, err = e.s.GetProject(e.admin, p.ID)
	wantKind(t, err, fault.NotFound)
	if want := "Could not find project: " + p.ID + "."; fault.Message(err) != want {
		t.Fatalf("message %q", fault.Message(err))
	}
	wantKind(t, e.s.DeleteProject(e.admin, p.ID), fault.NotFound)
}

func TestProjectHierarchyDepth(t *testing.T) {
	e := newEnv(t)
	parent := ""
	for i := range maxProjectDepth {
		p, err := e.s.CreateProject(e.admin, Project{Name: fmt.Sprintf("level%d", i), ParentID: parent, Enabled: true})
		ok(t, err)
		parent = p.ID
	}
	_, err := e.s.CreateProject(e.admin, Project{Name: "too-deep", ParentID: parent, Enabled: true})
	wantKind(t, err, fault.Forbidden)
}

func TestProjectIsolation(t *testing.T) {
	e := newEnv(t)
	a, ua, _, ctxA := e.member(t, "anna", "member")
	b, ub, _, _ := e.member(t, "boris", "member")

	_, err := e.s.GetProject(ctxA, a.ID)
	ok(t, err)
	checks := []struct {
		name string
		f    func() error
	}{
		{"get other project", func() error { _, err := e.s.GetProject(ctxA, b.ID); return err }},
		{"get missing project", func() error { _, err := e.s.GetProject(ctxA, newID()); return err }},
		{"list projects", func() error { _, _, err := e.s.ListProjects(ctxA, ProjectFilter{}); return err }},
		{"update own project", func() error { _, err := e.s.UpdateProject(ctxA, a.ID, ProjectUpdate{Name: ptr("x")}); return err }},
		{"update other project", func() error { _, err := e.s.UpdateProject(ctxA, b.ID, ProjectUpdate{Name: ptr("x")}); return err }},
		{"delete other project", func() error { return e.s.DeleteProject(ctxA, b.ID) }},
		{"create project", func() error { _, err := e.s.CreateProject(ctxA, Project{Name: "mine"}); return err }},
		{"other's projects", func() error { _, err := e.s.ListUserProjects(ctxA, ub.ID); return err }},
		{"other project's tags", func() error { _, err := e.s.ListProjectTags(ctxA, b.ID); return err }},
		{"tag own project", func() error { return e.s.AddProjectTag(ctxA, a.ID, "t") }},
		{"other user", func() error { _, err := e.s.GetUser(ctxA, ub.ID); return err }},
		{"list users", func() error { _, _, err := e.s.ListUsers(ctxA, UserFilter{}); return err }},
		{"update self", func() error { _, err := e.s.UpdateUser(ctxA, ua.ID, UserUpdate{Enabled: ptr(true)}); return err }},
		{"list groups", func() error { _, _, err := e.s.ListGroups(ctxA, GroupFilter{}); return err }},
		{"list domains", func() error { _, _, err := e.s.ListDomains(ctxA, DomainFilter{}); return err }},
		{"list roles", func() error { _, _, err := e.s.ListRoles(ctxA, RoleFilter{}); return err }},
		{"create role", func() error { _, err := e.s.CreateRole(ctxA, Role{Name: "r"}); return err }},
		{"grant self admin", func() error {
			return e.s.Grant(ctxA, Assignment{ActorType: ActorUser, ActorID: ua.ID, TargetType: TargetProject, TargetID: a.ID, RoleID: e.roleID(t, "admin")})
		}},
		{"grant on other project", func() error {
			return e.s.Grant(ctxA, Assignment{ActorType: ActorUser, ActorID: ua.ID, TargetType: TargetProject, TargetID: b.ID, RoleID: e.roleID(t, "member")})
		}},
		{"assignments of other project", func() error {
			_, err := e.s.ListRoleAssignments(ctxA, AssignmentFilter{ProjectID: b.ID})
			return err
		}},
		{"all assignments", func() error { _, err := e.s.ListRoleAssignments(ctxA, AssignmentFilter{}); return err }},
		{"catalog services", func() error { _, err := e.s.ListCatalogServices(ctxA, ""); return err }},
		{"create endpoint", func() error { _, err := e.s.CreateEndpoint(ctxA, Endpoint{}); return err }},
		{"other user's credentials", func() error { _, err := e.s.ListAppCredentials(ctxA, ub.ID); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.f()
			wantKind(t, err, fault.Forbidden)
			if !strings.HasPrefix(fault.Message(err), "Policy doesn't allow") && !strings.Contains(c.name, "credentials") {
				t.Fatalf("message %q", fault.Message(err))
			}
		})
	}
	// What a member may do for itself.
	self, err := e.s.GetUser(ctxA, ua.ID)
	ok(t, err)
	if self.ID != ua.ID {
		t.Fatal(self)
	}
	ps, err := e.s.ListUserProjects(ctxA, ua.ID)
	ok(t, err)
	if len(ps) != 1 || ps[0].ID != a.ID {
		t.Fatalf("own projects %+v", ps)
	}
	_, err = e.s.ListProjectTags(ctxA, a.ID)
	ok(t, err)
	_, err = e.s.GetDomain(ctxA, DefaultDomainID)
	ok(t, err)
	rs, err := e.s.ListRegions(ctxA, "")
	ok(t, err)
	if len(rs) != 1 || rs[0].ID != DefaultRegion {
		t.Fatalf("regions %+v", rs)
	}
}

func TestProjectPagination(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.project(t, fmt.Sprintf("page-%d", i))
	}
	all, more, err := e.s.ListProjects(e.admin, ProjectFilter{})
	ok(t, err)
	if len(all) != 7 || more { // admin, demo and five
		t.Fatalf("%d projects, more=%v", len(all), more)
	}
	var seen []string
	marker := ""
	for pages := 0; ; pages++ {
		ps, more, err := e.s.ListProjects(e.admin, ProjectFilter{ListOptions: ListOptions{Limit: 3, Marker: marker}})
		ok(t, err)
		for _, p := range ps {
			seen = append(seen, p.ID)
		}
		if !more {
			if pages != 2 || len(ps) != 1 {
				t.Fatalf("last page %d has %d", pages, len(ps))
			}
			break
		}
		marker = ps[len(ps)-1].ID
	}
	if !slices.IsSorted(seen) || len(seen) != 7 {
		t.Fatalf("paged %v", seen)
	}
	// Filters.
	enabled := false
	ps, _, err := e.s.ListProjects(e.admin, ProjectFilter{Enabled: &enabled})
	ok(t, err)
	if len(ps) != 0 {
		t.Fatalf("disabled: %+v", ps)
	}
	ps, _, err = e.s.ListProjects(e.admin, ProjectFilter{Name: "page-3"})
	ok(t, err)
	if len(ps) != 1 || ps[0].Name != "page-3" {
		t.Fatalf("by name: %+v", ps)
	}
}

func TestProjectTags(t *testing.T) {
	e := newEnv(t)
	p := e.project(t, "tagged")
	q := e.project(t, "other")
	ok(t, e.s.AddProjectTag(e.admin, p.ID, "blue"))
	ok(t, e.s.AddProjectTag(e.admin, p.ID, "blue"))
	ok(t, e.s.AddProjectTag(e.admin, q.ID, "red"))
	ok(t, e.s.CheckProjectTag(e.admin, p.ID, "blue"))
	wantKind(t, e.s.CheckProjectTag(e.admin, p.ID, "red"), fault.NotFound)
	wantKind(t, e.s.AddProjectTag(e.admin, p.ID, "a,b"), fault.Invalid)
	tags, err := e.s.SetProjectTags(e.admin, p.ID, []string{"y", "x"})
	ok(t, err)
	if !slices.Equal(tags, []string{"x", "y"}) {
		t.Fatal(tags)
	}
	_, err = e.s.SetProjectTags(e.admin, p.ID, []string{"x", "x"})
	wantKind(t, err, fault.Invalid)
	many := make([]string, 81)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	_, err = e.s.SetProjectTags(e.admin, p.ID, many)
	wantKind(t, err, fault.Invalid)
	ok(t, e.s.RemoveProjectTag(e.admin, p.ID, "x"))
	wantKind(t, e.s.RemoveProjectTag(e.admin, p.ID, "x"), fault.NotFound)
	got, err := e.s.ListProjectTags(e.admin, p.ID)
	ok(t, err)
	if !slices.Equal(got, []string{"y"}) {
		t.Fatal(got)
	}
	for _, c := range []struct {
		f            ProjectFilter
		wantP, wantQ bool
	}{
		{ProjectFilter{Tags: []string{"y"}}, true, false},
		{ProjectFilter{TagsAny: []string{"y", "red"}}, true, true},
		{ProjectFilter{NotTags: []string{"y"}}, false, true},
		{ProjectFilter{NotTagsAny: []string{"y", "red"}}, false, false},
	} {
		ps, _, err := e.s.ListProjects(e.admin, c.f)
		ok(t, err)
		hasP := slices.ContainsFunc(ps, func(x Project) bool { return x.ID == p.ID })
		hasQ := slices.ContainsFunc(ps, func(x Project) bool { return x.ID == q.ID })
		if hasP != c.wantP || hasQ != c.wantQ {
			t.Fatalf("%+v: p %v q %v", c.f, hasP, hasQ)
		}
	}
}
