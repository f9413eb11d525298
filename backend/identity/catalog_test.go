package identity

import (
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestCatalogManagement(t *testing.T) {
	e := newEnv(t)
	_, _, _, memberCtx := e.member(t, "cat", "member")

	r, err := e.s.CreateRegion(e.admin, Region{ID: "RegionTwo", Description: "second"})
	ok(t, err)
	_, err = e.s.CreateRegion(e.admin, Region{ID: "RegionTwo"})
	wantKind(t, err, fault.Conflict)
	child, err := e.s.CreateRegion(e.admin, Region{ParentRegionID: r.ID})
	ok(t, err)
	if len(child.ID) != 32 {
		t.Fatal(child.ID)
	}
	_, err = e.s.CreateRegion(e.admin, Region{ParentRegionID: "nowhere"})
	wantKind(t, err, fault.NotFound)
	_, err = e.s.UpdateRegion(e.admin, r.ID, RegionUpdate{ParentRegionID: &child.ID})
	wantKind(t, err, fault.Invalid)
	rs, err := e.s.ListRegions(memberCtx, r.ID)
	ok(t, err)
	if len(rs) != 1 || rs[0].ID != child.ID {
		t.Fatalf("children %+v", rs)
	}
	_, err = e.s.CreateRegion(memberCtx, Region{ID: "mine"})
	wantKind(t, err, fault.Forbidden)

	svc, err := e.s.CreateCatalogService(e.admin, CatalogService{Type: "volumev3", Name: "cinder", Enabled: true})
	ok(t, err)
	_, err = e.s.CreateCatalogService(e.admin, CatalogService{Name: "typeless"})
	wantKind(t, err, fault.Invalid)
	ep, err := e.s.CreateEndpoint(e.admin, Endpoint{ServiceID: svc.ID, Interface: "public", RegionID: r.ID,
		URL: "http://127.0.0.1:8080/volume/v3/$(project_id)s", Enabled: true})
	ok(t, err)
	for _, bad := range []struct {
		name string
		ep   Endpoint
		kind fault.Kind
	}{
		{"bad interface", Endpoint{ServiceID: svc.ID, Interface: "private", URL: "http://x/"}, fault.Invalid},
		{"relative url", Endpoint{ServiceID: svc.ID, Interface: "public", URL: "/volume"}, fault.Invalid},
		{"javascript url", Endpoint{ServiceID: svc.ID, Interface: "public", URL: "javascript:alert(1)"}, fault.Invalid},
		{"unknown service", Endpoint{ServiceID: newID(), Interface: "public", URL: "http://x/"}, fault.NotFound},
		{"unknown region", Endpoint{ServiceID: svc.ID, Interface: "public", RegionID: "nope", URL: "http://x/"}, fault.NotFound},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := e.s.CreateEndpoint(e.admin, bad.ep)
			wantKind(t, err, bad.kind)
		})
	}
	wantKind(t, e.s.DeleteRegion(e.admin, r.ID), fault.Conflict)

	// The member's catalog has the new service with its project substituted.
	cat, err := e.s.Catalog(memberCtx)
	ok(t, err)
	c, _ := auth.Caller(memberCtx)
	found := false
	for _, ce := range cat {
		if ce.Service.ID == svc.ID {
			found = true
			if len(ce.Endpoints) != 1 || !strings.HasSuffix(ce.Endpoints[0].URL, "/volume/v3/"+c.ProjectID) {
				t.Fatalf("endpoints %+v", ce.Endpoints)
			}
		}
	}
	if !found {
		t.Fatal("new service missing from catalog")
	}
	// Disabled endpoints and services leave the catalog.
	_, err = e.s.UpdateEndpoint(e.admin, ep.ID, EndpointUpdate{Enabled: ptr(false)})
	ok(t, err)
	cat, err = e.s.Catalog(memberCtx)
	ok(t, err)
	for _, ce := range cat {
		if ce.Service.ID == svc.ID {
			t.Fatal("disabled endpoint still listed")
		}
	}
	up, err := e.s.UpdateCatalogService(e.admin, svc.ID, CatalogServiceUpdate{Name: ptr("cinderv3")})
	ok(t, err)
	if up.Name != "cinderv3" || up.Type != "volumev3" {
		t.Fatalf("updated %+v", up)
	}
	eps, err := e.s.ListEndpoints(e.admin, EndpointFilter{ServiceID: svc.ID})
	ok(t, err)
	if len(eps) != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	ok(t, e.s.DeleteCatalogService(e.admin, svc.ID))
	_, err = e.s.GetEndpoint(e.admin, ep.ID)
	wantKind(t, err, fault.NotFound)
	ok(t, e.s.DeleteRegion(e.admin, child.ID))
	ok(t, e.s.DeleteRegion(e.admin, r.ID))
	_, err = e.s.GetRegion(e.admin, r.ID)
	wantKind(t, err, fault.NotFound)
	ss, err := e.s.ListCatalogServices(e.admin, "compute")
	ok(t, err)
	if len(ss) != 1 || ss[0].Name != "nova" {
		t.Fatalf("compute services %+v", ss)
	}
}
