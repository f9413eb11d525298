package identity_test

// Compatibility tests: gophercloud v2, a stock OpenStack client, against the
// REST API mounted at /identity exactly as the web server mounts it.

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// compatClient authenticates with gophercloud and returns the identity v3
// client found through the token's catalog.
func compatClient(t *testing.T, opts gophercloud.AuthOptions) (*gophercloud.ProviderClient, *gophercloud.ServiceClient) {
	t.Helper()
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		t.Fatalf("gophercloud authentication: %v", err)
	}
	client, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("identity client from the catalog: %v", err)
	}
	return provider, client
}

func TestCompatGophercloud(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	provider, client := compatClient(t, gophercloud.AuthOptions{
		IdentityEndpoint: e.base + "/v3",
		Username:         "admin",
		Password:         apiAdminPassword,
		DomainName:       "Default",
		TenantName:       "admin",
	})
	if client.Endpoint != e.base+"/v3/" {
		t.Errorf("identity endpoint from the catalog %q, want %q", client.Endpoint, e.base+"/v3/")
	}
	if provider.Token() == "" {
		t.Fatal("no token")
	}

	// Projects: create two, list them one per page through links.next.
	yes := true
	var made []string
	for _, name := range []string{"compat-a", "compat-b"} {
		p, err := projects.Create(ctx, client, projects.CreateOpts{
			Name: name, DomainID: "default", Description: "made by gophercloud", Enabled: &yes,
			Tags: []string{"compat"}, Extra: map[string]any{"cost_centre": "42"},
		}).Extract()
		if err != nil {
			t.Fatalf("create project: %v", err)
		}
		if p.Name != name || p.DomainID != "default" || p.ParentID != "default" || !p.Enabled || p.ID == "" ||
			p.Description != "made by gophercloud" || len(p.Tags) != 1 || p.Tags[0] != "compat" {
			t.Errorf("created project %+v", p)
		}
		made = append(made, p.ID)
	}
	pages := 0
	var listed []projects.Project
	err := projects.List(client, projects.ListOpts{Tags: "compat", Limit: 1}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		pages++
		ps, err := projects.ExtractProjects(page)
		listed = append(listed, ps...)
		return true, err
	})
	if err != nil {
		t.Fatalf("list projects: %v", err)
	}
	if len(listed) != 2 || pages < 2 || listed[0].ID == listed[1].ID {
		t.Errorf("listed %d projects over %d pages: %+v", len(listed), pages, listed)
	}
	all, err := projects.List(client, projects.ListOpts{Name: "compat-a"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := projects.ExtractProjects(all); len(ps) != 1 || ps[0].ID != made[0] {
		t.Errorf("projects named compat-a: %+v", ps)
	}
	if p, err := projects.Get(ctx, client, made[0]).Extract(); err != nil || p.Name != "compat-a" {
		t.Errorf("get project: %+v, %v", p, err)
	}

	// Users.
	u, err := users.Create(ctx, client, users.CreateOpts{
		Name: "gopher", DomainID: "default", Password: "gopher-pass", Enabled: &yes,
		DefaultProjectID: made[0], Description: "a gopher", Extra: map[string]any{"email": "gopher@example.com"},
	}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	if u.Name != "gopher" || u.DomainID != "default" || !u.Enabled || u.DefaultProjectID != made[0] || u.Extra["email"] != "gopher@example.com" {
		t.Errorf("created user %+v", u)
	}
	_, err = users.Create(ctx, client, users.CreateOpts{Name: "gopher", DomainID: "default"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("duplicate user: %v, want a 409", err)
	}

	// Roles: find member and reader, grant member directly and reader
	// through a group.
	rp, err := roles.List(client, roles.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := roles.ExtractRoles(rp)
	roleID := map[string]string{}
	for _, r := range rs {
		roleID[r.Name] = r.ID
	}
	if roleID["member"] == "" || roleID["reader"] == "" || roleID["admin"] == "" {
		t.Fatalf("roles %v", roleID)
	}
	if err := roles.Assign(ctx, client, roleID["member"], roles.AssignOpts{UserID: u.ID, ProjectID: made[0]}).ExtractErr(); err != nil {
		t.Fatalf("assign: %v", err)
	}
	if err := roles.Validate(ctx, client, roleID["member"], roles.ValidateOpts{UserID: u.ID, ProjectID: made[0]}).ExtractErr(); err != nil {
		t.Errorf("validate assignment: %v", err)
	}
	g, err := groups.Create(ctx, client, groups.CreateOpts{Name: "gophers", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddToGroup(ctx, client, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if ok, err := users.IsMemberOfGroup(ctx, client, g.ID, u.ID).Extract(); err != nil || !ok {
		t.Errorf("IsMemberOfGroup: %v, %v", ok, err)
	}
	if err := roles.Assign(ctx, client, roleID["reader"], roles.AssignOpts{GroupID: g.ID, ProjectID: made[0]}).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	ap, err := roles.ListAssignments(client, roles.ListAssignmentsOpts{UserID: u.ID, Effective: &yes, IncludeNames: &yes}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list assignments: %v", err)
	}
	as, err := roles.ExtractRoleAssignments(ap)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, a := range as {
		if a.User.ID != u.ID || a.User.Name != "gopher" || a.User.Domain.Name != "Default" {
			t.Errorf("assignment user %+v", a.User)
		}
		if a.Scope.Project.ID != made[0] || a.Scope.Project.Name != "compat-a" || a.Scope.Project.Domain.ID != "default" {
			t.Errorf("assignment scope %+v", a.Scope)
		}
		if a.Group.ID != "" {
			t.Errorf("effective assignment with a group: %+v", a)
		}
		names[a.Role.Name] = true
	}
	// member directly; reader both through the group and implied by member.
	if len(as) < 2 || !names["member"] || !names["reader"] {
		t.Errorf("effective assignments %+v", as)
	}

	rr, err := roles.ListAssignmentsOnResource(client, roles.ListAssignmentsOnResourceOpts{UserID: u.ID, ProjectID: made[0]}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list assignments on resource: %v", err)
	}
	onProject, _ := roles.ExtractRoles(rr)
	if len(onProject) != 1 || onProject[0].ID != roleID["member"] || onProject[0].Name != "member" {
		t.Errorf("roles on project %+v", onProject)
	}

	// The member authenticates with gophercloud through version discovery
	// on the unversioned endpoint; the admin validates its token.
	memberProvider, memberClient := compatClient(t, gophercloud.AuthOptions{
		IdentityEndpoint: e.base + "/",
		UserID:           u.ID,
		Password:         "gopher-pass",
		TenantID:         made[0],
	})
	res := tokens.Get(ctx, client, memberProvider.Token())
	tu, err := res.ExtractUser()
	if err != nil {
		t.Fatalf("tokens.Get: %v", err)
	}
	if tu.ID != u.ID || tu.Name != "gopher" || tu.Domain.ID != "default" {
		t.Errorf("token user %+v", tu)
	}
	tp, _ := res.ExtractProject()
	if tp == nil || tp.ID != made[0] || tp.Name != "compat-a" {
		t.Errorf("token project %+v", tp)
	}
	trs, _ := res.ExtractRoles()
	tokenRoles := map[string]bool{}
	for _, r := range trs {
		tokenRoles[r.Name] = true
	}
	if !tokenRoles["member"] || !tokenRoles["reader"] || tokenRoles["admin"] {
		t.Errorf("token roles %v", tokenRoles)
	}
	tok, err := res.ExtractToken()
	if err != nil || tok.ExpiresAt.IsZero() {
		t.Errorf("token expiry: %+v, %v", tok, err)
	}
	if ok, err := tokens.Validate(ctx, client, memberProvider.Token()); err != nil || !ok {
		t.Errorf("tokens.Validate: %v, %v", ok, err)
	}

	// A member listing users gets gophercloud's 403 error.
	_, err = users.List(memberClient, nil).AllPages(ctx)
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) || code.Actual != http.StatusForbidden {
		t.Errorf("member listing users: %v, want ErrUnexpectedResponseCode 403", err)
	}
	// And does not see the other project.
	_, err = projects.Get(ctx, memberClient, made[1]).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("member reading another project: %v", err)
	}

	// Revocation through gophercloud ends the member's token.
	if err := tokens.Revoke(ctx, client, memberProvider.Token()).Err; err != nil {
		t.Fatal(err)
	}
	if ok, err := tokens.Validate(ctx, client, memberProvider.Token()); err != nil || ok {
		t.Errorf("revoked token validates: %v, %v", ok, err)
	}

	// Cleanup through gophercloud.
	if err := roles.Unassign(ctx, client, roleID["member"], roles.UnassignOpts{UserID: u.ID, ProjectID: made[0]}).ExtractErr(); err != nil {
		t.Error(err)
	}
	if err := users.Delete(ctx, client, u.ID).ExtractErr(); err != nil {
		t.Error(err)
	}
	for _, id := range made {
		if err := projects.Delete(ctx, client, id).ExtractErr(); err != nil {
			t.Error(err)
		}
	}
}
