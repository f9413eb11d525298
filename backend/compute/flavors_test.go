package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestDefaultFlavorsIdempotent(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.EnsureDefaultFlavors(e.admin.Ctx); err != nil {
		t.Fatal(err)
	}
	fs, err := e.svc.ListFlavors(e.alice.Ctx, compute.FlavorFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]int64{"m1.tiny": {1, 128, 1}, "m1.small": {1, 2048, 20}, "m1.medium": {2, 4096, 40}, "m1.large": {4, 8192, 80}}
	if len(fs) != len(want) {
		t.Fatalf("got %d flavors, want %d: %+v", len(fs), len(want), fs)
	}
	for _, f := range fs {
		w, ok := want[f.Name]
		if !ok || f.VCPUs != w[0] || f.MemoryMB != w[1] || f.RootGB != w[2] || !f.IsPublic {
			t.Errorf("flavor %+v, want %v", f, w)
		}
	}
}

func TestFlavorService(t *testing.T) {
	e := newEnv(t)
	desc := "a private flavor"
	cases := []struct {
		name string
		u    func() user
		f    compute.Flavor
		kind fault.Kind // 0 (Internal) means success
	}{
		{"admin creates", func() user { return e.admin }, compute.Flavor{ID: "p1", Name: "private.one", VCPUs: 2, MemoryMB: 512, RootGB: 5, Description: &desc}, -1},
		{"member may not", func() user { return e.alice }, compute.Flavor{Name: "nope", VCPUs: 1, MemoryMB: 64}, fault.Forbidden},
		{"duplicate name", func() user { return e.admin }, compute.Flavor{Name: "m1.tiny", VCPUs: 1, MemoryMB: 64}, fault.Conflict},
		{"duplicate id", func() user { return e.admin }, compute.Flavor{ID: "1", Name: "other", VCPUs: 1, MemoryMB: 64}, fault.Conflict},
		{"zero ram", func() user { return e.admin }, compute.Flavor{Name: "zero", VCPUs: 1, MemoryMB: 0}, fault.Invalid},
		{"negative disk", func() user { return e.admin }, compute.Flavor{Name: "neg", VCPUs: 1, MemoryMB: 64, RootGB: -1}, fault.Invalid},
		{"bad id", func() user { return e.admin }, compute.Flavor{ID: "a/b", Name: "slash", VCPUs: 1, MemoryMB: 64}, fault.Invalid},
		{"blank name", func() user { return e.admin }, compute.Flavor{Name: " x", VCPUs: 1, MemoryMB: 64}, fault.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.IsPublic = c.name != "admin creates"
			_, err := e.svc.CreateFlavor(c.u().Ctx, f)
			if c.kind == -1 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !fault.Is(err, c.kind) {
				t.Fatalf("got %v, want kind %v", err, c.kind)
			}
		})
	}
	// The private flavor: invisible to alice until her project gets access.
	if _, err := e.svc.GetFlavor(e.alice.Ctx, "p1"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("private flavor visible without access: %v", err)
	}
	if _, err := e.svc.AddFlavorAccess(e.admin.Ctx, "p1", e.alice.ProjectID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddFlavorAccess(e.admin.Ctx, "p1", e.alice.ProjectID); !fault.Is(err, fault.Conflict) {
		t.Fatalf("duplicate access: %v", err)
	}
	if _, err := e.svc.AddFlavorAccess(e.admin.Ctx, "1", e.alice.ProjectID); !fault.Is(err, fault.Conflict) {
		t.Fatalf("access to a public flavor: %v", err)
	}
	if f, err := e.svc.GetFlavor(e.alice.Ctx, "p1"); err != nil || f.Description == nil || *f.Description != desc {
		t.Fatalf("flavor with access: %+v %v", f, err)
	}
	fs, _ := e.svc.ListFlavors(e.alice.Ctx, compute.FlavorFilter{})
	if len(fs) != 5 {
		t.Fatalf("alice sees %d flavors, want 5", len(fs))
	}
	if fs, _ := e.svc.ListFlavors(e.bob.Ctx, compute.FlavorFilter{}); len(fs) != 4 {
		t.Fatalf("bob sees %d flavors, want 4", len(fs))
	}
	if _, err := e.svc.RemoveFlavorAccess(e.admin.Ctx, "p1", e.alice.ProjectID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetFlavor(e.alice.Ctx, "p1"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("flavor visible after access removed: %v", err)
	}
	// Extra specs.
	if _, err := e.svc.SetFlavorExtraSpecs(e.admin.Ctx, "1", map[string]string{"hw:cpu_policy": "shared", "k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteFlavorExtraSpec(e.admin.Ctx, "1", "k"); err != nil {
		t.Fatal(err)
	}
	specs, err := e.svc.FlavorExtraSpecs(e.alice.Ctx, "1")
	if err != nil || len(specs) != 1 || specs["hw:cpu_policy"] != "shared" {
		t.Fatalf("extra specs %v %v", specs, err)
	}
	if _, err := e.svc.SetFlavorExtraSpecs(e.alice.Ctx, "1", map[string]string{"a": "b"}); !fault.Is(err, fault.Forbidden) {
		t.Fatalf("member sets extra specs: %v", err)
	}
	// Sorting and paging.
	page, err := e.svc.ListFlavors(e.alice.Ctx, compute.FlavorFilter{SortKey: "memory_mb", SortDir: "desc", Limit: 2})
	if err != nil || len(page) != 2 || page[0].Name != "m1.large" || page[1].Name != "m1.medium" {
		t.Fatalf("sorted page %+v %v", page, err)
	}
	if _, err := e.svc.ListFlavors(e.alice.Ctx, compute.FlavorFilter{Marker: "nope"}); !fault.Is(err, fault.Invalid) {
		t.Fatalf("unknown marker: %v", err)
	}
	if err := e.svc.DeleteFlavor(e.admin.Ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteFlavor(e.admin.Ctx, "p1"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestFlavorAPI(t *testing.T) {
	e := newEnv(t)
	// Create with the fields novaclient sends.
	r := e.do("POST", "/flavors", e.admin.Token, map[string]any{"flavor": map[string]any{
		"name": "m2.custom", "ram": 1024, "vcpus": 2, "disk": 10, "id": "custom",
		"OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": false,
	}}).want(http.StatusOK)
	f := r.obj("flavor")
	if f["id"] != "custom" || f["swap"] != "" || f["os-flavor-access:is_public"] != false {
		t.Fatalf("created flavor %v", f)
	}
	// 2.75 shows swap as 0 and 2.61 the extra specs.
	r = e.do("GET", "/flavors/custom", e.admin.Token, nil, microversion("2.75")...).want(http.StatusOK)
	if f := r.obj("flavor"); f["swap"] != 0.0 || f["extra_specs"] == nil || f["description"] != nil {
		t.Fatalf("flavor at 2.75 %v", f)
	}
	if r.header.Get("OpenStack-API-Version") != "compute 2.75" || !contains(r.header.Values("Vary"), "OpenStack-API-Version") {
		t.Fatalf("microversion headers %v", r.header)
	}
	// Access list, then the member sees the private flavor.
	e.do("GET", "/flavors/custom", e.alice.Token, nil).want(http.StatusNotFound)
	r = e.do("POST", "/flavors/custom/action", e.admin.Token, map[string]any{"addTenantAccess": map[string]any{"tenant": e.alice.ProjectID}}).want(http.StatusOK)
	if l := r.list("flavor_access"); len(l) != 1 || l[0]["tenant_id"] != e.alice.ProjectID {
		t.Fatalf("flavor access %v", l)
	}
	e.do("GET", "/flavors/custom", e.alice.Token, nil).want(http.StatusOK)
	e.do("GET", "/flavors/1/os-flavor-access", e.admin.Token, nil).want(http.StatusNotFound)
	// Extra specs.
	e.do("POST", "/flavors/custom/os-extra_specs", e.admin.Token, map[string]any{"extra_specs": map[string]any{"quota:cpu_shares": "1024", "n": 5}}).want(http.StatusOK)
	r = e.do("GET", "/flavors/custom/os-extra_specs/n", e.alice.Token, nil).want(http.StatusOK)
	if r.body["n"] != "5" {
		t.Fatalf("extra spec %v", r.body)
	}
	e.do("PUT", "/flavors/custom/os-extra_specs/n", e.admin.Token, map[string]any{"n": "6"}).want(http.StatusOK)
	e.do("PUT", "/flavors/custom/os-extra_specs/n", e.admin.Token, map[string]any{"m": "6"}).want(http.StatusBadRequest)
	e.do("DELETE", "/flavors/custom/os-extra_specs/n", e.admin.Token, nil).want(http.StatusOK)
	e.do("DELETE", "/flavors/custom/os-extra_specs/n", e.admin.Token, nil).want(http.StatusNotFound)
	// Description update needs 2.55.
	e.do("PUT", "/flavors/custom", e.admin.Token, map[string]any{"flavor": map[string]any{"description": "d"}}).want(http.StatusMethodNotAllowed)
	r = e.do("PUT", "/flavors/custom", e.admin.Token, map[string]any{"flavor": map[string]any{"description": "d"}}, microversion("2.55")...).want(http.StatusOK)
	if r.obj("flavor")["description"] != "d" {
		t.Fatalf("description %v", r.body)
	}
	// Lists, paging and the next link.
	r = e.do("GET", "/flavors?limit=2", e.alice.Token, nil).want(http.StatusOK)
	if len(r.list("flavors")) != 2 || r.body["flavors_links"] == nil {
		t.Fatalf("paged flavors %s", r.raw)
	}
	r = e.do("GET", "/flavors/detail?minRam=4096", e.alice.Token, nil).want(http.StatusOK)
	if len(r.list("flavors")) != 2 {
		t.Fatalf("flavors with minRam %s", r.raw)
	}
	e.do("GET", "/flavors?minRam=x", e.alice.Token, nil).want(http.StatusBadRequest)
	// Errors.
	e.do("POST", "/flavors", e.alice.Token, map[string]any{"flavor": map[string]any{"name": "x", "ram": 1, "vcpus": 1, "disk": 1}}).want(http.StatusForbidden)
	e.do("POST", "/flavors", e.admin.Token, `{"flavor": {"name": "x",`).want(http.StatusBadRequest)
	e.do("POST", "/flavors", e.admin.Token, map[string]any{"flavor": map[string]any{"name": "x", "vcpus": 1, "disk": 1}}).want(http.StatusBadRequest)
	e.do("POST", "/flavors", e.admin.Token, map[string]any{"flavor": map[string]any{"name": "m1.tiny", "ram": 1, "vcpus": 1, "disk": 1}}).want(http.StatusConflict)
	e.do("DELETE", "/flavors/custom", e.alice.Token, nil).want(http.StatusForbidden)
	e.do("DELETE", "/flavors/custom", e.admin.Token, nil).want(http.StatusAccepted)
	e.do("GET", "/flavors/custom", e.admin.Token, nil).want(http.StatusNotFound)
}

func contains(vs []string, s string) bool {
	for _, v := range vs {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}
