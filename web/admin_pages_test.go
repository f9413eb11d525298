package web

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// adminPagesEnv is the compute env with a network service too, served by a
// second web server that has all three.
type adminPagesEnv struct {
	*cenv
	nets *network.Service
}

// newAdminPagesEnv builds it; agents, when given, reports the network
// agents.
func newAdminPagesEnv(t *testing.T, agents ...network.AgentSource) *adminPagesEnv {
	t.Helper()
	ce := newComputeEnv(t)
	pol := policy.New(policy.BaseRules())
	pol.Register(network.PolicyRules()...)
	cfg := network.Config{Policy: pol, Tokens: ce.id}
	if len(agents) > 0 {
		cfg.Agents = agents[0]
	}
	nets, err := network.New(context.Background(), ce.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := New(Config{Identity: ce.id, DB: ce.db, Compute: ce.comp, Images: ce.imgs, Network: nets,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	env := *ce.env
	env.web, env.srv = ws, srv
	c := *ce
	c.env = &env
	return &adminPagesEnv{cenv: &c, nets: nets}
}

// boot starts an m1.tiny instance without networks as ctx's user and
// waits until it runs.
func (e *adminPagesEnv) boot(ctx context.Context, name string) string {
	e.t.Helper()
	return e.bootActive(ctx, name)
}

// externalNetwork creates a flat external network with a subnet, as the admin.
func (e *adminPagesEnv) externalNetwork(name, cidr string) *network.Network {
	e.t.Helper()
	actx := e.adminCtx()
	n, err := e.nets.CreateNetwork(actx, network.NetworkCreate{Name: name, NetworkType: network.TypeFlat,
		PhysicalNetwork: "physnet1", External: boolRef(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.nets.CreateSubnet(actx, network.SubnetCreate{NetworkID: n.ID, CIDR: cidr, EnableDHCP: boolRef(false)}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// wantHXLocation checks an htmx action finished with a success toast and
// a load of path.
func wantHXLocation(t *testing.T, r resp, path string) {
	t.Helper()
	wantStatus(t, r, http.StatusNoContent)
	if !strings.Contains(r.header.Get("HX-Location"), `"path":"`+path) {
		t.Fatalf("HX-Location %q, want path %s", r.header.Get("HX-Location"), path)
	}
	if lvl := toastOf(t, r)["level"]; lvl != "success" {
		t.Fatalf("toast %v", toastOf(t, r))
	}
}

func TestAdminPagesRenderAndRefuseMembers(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	admin := e.adminClient()
	alice := e.client()
	alice.login("alice", "alice-Secret-1")

	r := admin.get("/admin")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/admin/overview" {
		t.Fatalf("/admin redirects to %q", loc)
	}

	pages := []struct {
		path string
		want []string
	}{
		{"/admin/overview", []string{"node-1", `id="cloud-totals"`, "Running instances"}},
		{"/admin/images", []string{"cirros", "Owner"}},
		{"/admin/networks", []string{"No networks yet", "Create external network"}},
		{"/admin/routers", []string{"No routers yet"}},
		{"/admin/floating-ips", []string{"No floating IPs allocated"}},
		{"/admin/quotas", []string{`id="quota-project"`, `id="quota-compute"`, `id="quota-network"`}},
	}
	for _, p := range pages {
		r := admin.get(p.path)
		wantStatus(t, r, http.StatusOK)
		if !isFullPage(r.body) {
			t.Fatalf("%s: not a full page", p.path)
		}
		wantContains(t, r, p.want...)
		wantContains(t, r, `aria-current="page"`)
		r = admin.get(p.path, hx)
		wantStatus(t, r, http.StatusOK)
		if isFullPage(r.body) {
			t.Fatalf("%s: htmx answer is a full page", p.path)
		}
		wantContains(t, r, p.want...)

		wantStatus(t, alice.get(p.path), http.StatusForbidden)
		wantStatus(t, alice.get(p.path, hx), http.StatusForbidden)
	}
	// The admin's navigation lists the pages; a member's has no Admin section.
	wantContains(t, admin.get("/admin/overview"), `href="/admin/overview"`, `href="/admin/images"`, `href="/admin/networks"`,
		`href="/admin/routers"`, `href="/admin/floating-ips"`, `href="/admin/quotas"`)
	wantNotContains(t, alice.get("/project/overview"), `href="/admin/overview"`, `href="/admin/quotas"`)

	// Members cannot act either.
	wantStatus(t, alice.post("/admin/quotas/"+pa.ID+"/compute", url.Values{"instances": {"100"}}), http.StatusForbidden)
	wantStatus(t, alice.post("/admin/networks", url.Values{"name": {"x"}, "network_type": {"flat"},
		"physical_network": {"physnet1"}, "cidr": {"198.51.100.0/24"}}), http.StatusForbidden)
	wantStatus(t, alice.get("/admin/networks/new", hxTargetModal), http.StatusForbidden)
	wantStatus(t, alice.get("/admin/images/"+e.imageID+"/delete", hxTargetModal), http.StatusForbidden)
	wantStatus(t, alice.post("/admin/images/"+e.imageID+"/delete", nil), http.StatusForbidden)
	if lim, err := e.comp.GetQuotas(e.adminCtx(), pa.ID); err != nil || lim[compute.QuotaInstances] != 10 {
		t.Fatalf("quota after a member's post: %v %v", lim, err)
	}
	if ns, _, err := e.nets.ListNetworks(e.adminCtx(), network.ListOptions{}); err != nil || len(ns) != 0 {
		t.Fatalf("networks after a member's post: %v %v", ns, err)
	}
}

func TestAdminOverviewShowsHypervisorUse(t *testing.T) {
	e := newAdminPagesEnv(t)
	admin := e.adminClient()

	r := admin.get("/admin/overview")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="hypervisor-node-1"`, "0 / 16", "0 / 32768 MiB", "0 / 500 GiB")

	e.boot(e.adminCtx(), "ov-1")
	r = admin.get("/admin/overview", hx)
	wantStatus(t, r, http.StatusOK)
	// m1.tiny: 1 vCPU, 128 MiB, 1 GiB, on the only host; the totals agree.
	if n := strings.Count(r.body, "1 / 16"); n != 2 {
		t.Fatalf("vCPUs used shown %d times, want 2 (totals and node-1):\n%s", n, r.body)
	}
	wantContains(t, r, "128 / 32768 MiB", "1 / 500 GiB", `<dd id="totals-instances">1</dd>`, `<dd id="totals-hypervisors">1</dd>`, "status-active")
}

func TestAdminImagesShowsEveryProjectsImages(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	im, err := e.imgs.CreateImage(actx, image.Image{Name: "alice-private", Visibility: "private", DiskFormat: "qcow2", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	admin := e.adminClient()

	r := admin.get("/admin/images")
	wantStatus(t, r, http.StatusOK)
	row := rowOf(t, r.body, "image-"+im.ID)
	for _, s := range []string{"alice-private", "proj-a", "private", "queued", "/admin/images/" + im.ID + "/delete"} {
		if !strings.Contains(row, s) {
			t.Fatalf("row lacks %q:\n%s", s, row)
		}
	}
	// The public image belongs to the admin project.
	if !strings.Contains(rowOf(t, r.body, "image-"+e.imageID), "admin") {
		t.Fatalf("public image's owner missing:\n%s", r.body)
	}

	r = admin.get("/admin/images/"+im.ID+"/delete", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Delete image", "alice-private", `action="/admin/images/`+im.ID+`/delete"`)
	r = admin.post("/admin/images/"+im.ID+"/delete", nil, hx)
	wantHXLocation(t, r, "/admin/images")
	if _, err := e.imgs.GetImage(actx, im.ID); err == nil {
		t.Fatal("image still there after delete")
	}
	wantNotContains(t, admin.get("/admin/images"), "alice-private")
}

// rowOf returns the table row with the given element ID.
func rowOf(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `<tr id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no row %s in:\n%s", id, body)
	}
	j := strings.Index(body[i:], "</tr>")
	if j < 0 {
		t.Fatalf("row %s not closed", id)
	}
	return body[i : i+j]
}

// quotaForm is every limit of service's section as the page shows it, with
// the changes applied.
func quotaForm(t *testing.T, page string, service string, set map[string]string) url.Values {
	t.Helper()
	v := url.Values{}
	res := computeQuotaResources
	if service == quotaNetwork {
		res = networkQuotaResources
	}
	for _, q := range res {
		marker := `id="q-` + service + `-` + q.name + `" name="` + q.name + `" value="`
		i := strings.Index(page, marker)
		if i < 0 {
			t.Fatalf("no input for %s/%s in:\n%s", service, q.name, page)
		}
		rest := page[i+len(marker):]
		v.Set(q.name, rest[:strings.IndexByte(rest, '"')])
	}
	for k, val := range set {
		v.Set(k, val)
	}
	return v
}

func TestAdminQuotasEdit(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	admin := e.adminClient()
	base := "/admin/quotas?project=" + pa.ID

	r := admin.get(base)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `value="`+pa.ID+`" selected`, `id="q-compute-instances" name="instances" value="10"`,
		`id="q-network-network" name="network" value="100"`, "0 of 10")
	page := r.body

	// A compute limit changes, and only the changed one is stored.
	r = admin.post("/admin/quotas/"+pa.ID+"/compute", quotaForm(t, page, quotaCompute, map[string]string{"instances": "3"}), hx)
	wantHXLocation(t, r, "/admin/quotas")
	lim, err := e.comp.GetQuotas(e.adminCtx(), pa.ID)
	if err != nil || lim[compute.QuotaInstances] != 3 || lim[compute.QuotaCores] != 20 {
		t.Fatalf("compute quotas %v %v", lim, err)
	}
	wantContains(t, admin.get(base), `id="q-compute-instances" name="instances" value="3"`, "0 of 3")

	// A network limit changes, plain post: a redirect back to the project.
	r = admin.post("/admin/quotas/"+pa.ID+"/network", quotaForm(t, page, quotaNetwork, map[string]string{"floatingip": "-1"}))
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != base {
		t.Fatalf("redirect to %q", loc)
	}
	nl, err := e.nets.GetQuota(e.adminCtx(), pa.ID)
	if err != nil || nl["floatingip"] != -1 {
		t.Fatalf("network quotas %v %v", nl, err)
	}
	wantContains(t, admin.get(base), "0 used, no limit")

	// A value that is not a number is refused beside its field.
	r = admin.post("/admin/quotas/"+pa.ID+"/compute", quotaForm(t, page, quotaCompute, map[string]string{"cores": "lots"}), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if isFullPage(r.body) {
		t.Fatal("htmx refusal is a full page")
	}
	wantContains(t, r, `id="quota-compute"`, `aria-invalid="true"`, "Enter a whole number, or -1 for no limit.", `value="lots"`)
	r = admin.post("/admin/quotas/"+pa.ID+"/compute", quotaForm(t, page, quotaCompute, map[string]string{"ram": "-2"}))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !isFullPage(r.body) {
		t.Fatal("plain refusal is not a page")
	}
	wantContains(t, r, "Enter a whole number, or -1 for no limit.", `id="quota-network"`)

	// The service refuses a limit below what is in use, in its words.
	e.boot(e.userCtx("alice", "alice-Secret-1", pa.ID), "q-1")
	r = admin.post("/admin/quotas/"+pa.ID+"/compute", quotaForm(t, page, quotaCompute, map[string]string{"instances": "0"}), hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error", "instances: quota 0 is below usage 1")
	if lim, _ := e.comp.GetQuotas(e.adminCtx(), pa.ID); lim[compute.QuotaInstances] != 3 {
		t.Fatalf("instances quota %d after a refusal", lim[compute.QuotaInstances])
	}

	// Reset to defaults, after a question: compute back to 10 instances,
	// network back to 50 floating IPs; a member may do neither.
	alice := e.client()
	alice.login("alice", "alice-Secret-1")
	wantStatus(t, alice.post("/admin/quotas/"+pa.ID+"/compute/reset", nil, hxTargetModal), http.StatusForbidden)
	wantContains(t, admin.get(base), `href="/admin/quotas/`+pa.ID+`/compute/reset"`, `href="/admin/quotas/`+pa.ID+`/network/reset"`)
	r = admin.get("/admin/quotas/"+pa.ID+"/compute/reset", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Reset the compute quotas of", "proj-a", "Reset to defaults")
	wantHXLocation(t, admin.post("/admin/quotas/"+pa.ID+"/compute/reset", nil, hxTargetModal), "/admin/quotas")
	wantHXLocation(t, admin.post("/admin/quotas/"+pa.ID+"/network/reset", nil, hxTargetModal), "/admin/quotas")
	if lim, _ := e.comp.GetQuotas(e.adminCtx(), pa.ID); lim[compute.QuotaInstances] != 10 {
		t.Fatalf("instances quota %d after the reset", lim[compute.QuotaInstances])
	}
	if nl, _ := e.nets.GetQuota(e.adminCtx(), pa.ID); nl["floatingip"] != 50 {
		t.Fatalf("floating IP quota %d after the reset", nl["floatingip"])
	}
	wantStatus(t, admin.post("/admin/quotas/"+pa.ID+"/volume/reset", nil, hxTargetModal), http.StatusNotFound)

	// An unknown project is a 404.
	wantStatus(t, admin.get("/admin/quotas?project=nope"), http.StatusNotFound)
	wantStatus(t, admin.post("/admin/quotas/nope/compute", url.Values{"instances": {"1"}}), http.StatusNotFound)
}

func TestAdminExternalNetworkRoutersAndFloatingIPs(t *testing.T) {
	e := newAdminPagesEnv(t)
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	admin := e.adminClient()

	r := admin.get("/admin/networks/new", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="external-network-form"`, `for="f-physical_network"`, `for="f-cidr"`, `for="f-pool_start"`, `name="dhcp"`)
	wantNotContains(t, r, `name="dhcp" value="true" checked`)

	// Inline validation; a refused subnet leaves no network behind.
	r = admin.post("/admin/networks", url.Values{"name": {""}, "network_type": {"flat"}, "physical_network": {"physnet1"},
		"segmentation_id": {"7"}, "cidr": {""}}, hxTarget2("external-network-form"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "Enter a name for the network.", "A flat network has no VLAN ID", "Enter the subnet&#39;s CIDR")
	r = admin.post("/admin/networks", url.Values{"name": {"bad"}, "network_type": {"flat"}, "physical_network": {"physnet1"},
		"cidr": {"not-a-cidr"}}, hxTarget2("external-network-form"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")
	if ns, _, _ := e.nets.ListNetworks(e.adminCtx(), network.ListOptions{}); len(ns) != 0 {
		t.Fatalf("networks after a refused subnet: %+v", ns)
	}

	r = admin.post("/admin/networks", url.Values{"name": {"public"}, "network_type": {"vlan"}, "physical_network": {"physnet1"},
		"segmentation_id": {"101"}, "shared": {"true"}, "cidr": {"203.0.113.0/24"}, "gateway": {"203.0.113.1"},
		"pool_start": {"203.0.113.10"}, "pool_end": {"203.0.113.99"}}, hxTarget2("external-network-form"))
	wantHXLocation(t, r, "/admin/networks")
	ns, _, err := e.nets.ListNetworks(e.adminCtx(), network.ListOptions{})
	if err != nil || len(ns) != 1 {
		t.Fatalf("networks %+v %v", ns, err)
	}
	ext := ns[0]
	if !ext.External || !ext.Shared || ext.NetworkType != "vlan" || ext.PhysicalNetwork != "physnet1" ||
		ext.SegmentationID == nil || *ext.SegmentationID != 101 || len(ext.Subnets) != 1 {
		t.Fatalf("network %+v", ext)
	}
	sn, err := e.nets.GetSubnet(e.adminCtx(), ext.Subnets[0])
	if err != nil || sn.EnableDHCP || sn.GatewayIP != "203.0.113.1" || len(sn.AllocationPools) != 1 || sn.AllocationPools[0].Start != "203.0.113.10" {
		t.Fatalf("subnet %+v %v", sn, err)
	}
	row := rowOf(t, admin.get("/admin/networks").body, "network-"+ext.ID)
	for _, s := range []string{"public", "admin", "203.0.113.0/24", "External", "vlan", "Physical network physnet1", "Segment 101"} {
		if !strings.Contains(row, s) {
			t.Fatalf("network row lacks %q:\n%s", s, row)
		}
	}

	// A member's router and floating IP show with their project.
	actx := e.userCtx("alice", "alice-Secret-1", pa.ID)
	rt, err := e.nets.CreateRouter(actx, network.RouterCreate{Name: "alice-router"})
	if err != nil {
		t.Fatal(err)
	}
	fip, err := e.nets.CreateFloatingIP(actx, network.FloatingIPCreate{FloatingNetworkID: ext.ID})
	if err != nil {
		t.Fatal(err)
	}
	row = rowOf(t, admin.get("/admin/routers").body, "router-"+rt.ID)
	if !strings.Contains(row, "alice-router") || !strings.Contains(row, "proj-a") {
		t.Fatalf("router row:\n%s", row)
	}
	row = rowOf(t, admin.get("/admin/floating-ips").body, "floating-ip-"+fip.ID)
	if !strings.Contains(row, fip.FloatingIPAddress) || !strings.Contains(row, "proj-a") || !strings.Contains(row, "public") {
		t.Fatalf("floating IP row:\n%s", row)
	}

	// The network is in use: deleting it is refused inside the confirmation.
	r = admin.get("/admin/networks/"+ext.ID+"/delete", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Delete network", "public")
	r = admin.post("/admin/networks/"+ext.ID+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error", "still in use")

	// Release and delete, confirmed.
	wantContains(t, admin.get("/admin/floating-ips/"+fip.ID+"/release", hxTargetModal), "Release floating IP", fip.FloatingIPAddress)
	wantHXLocation(t, admin.post("/admin/floating-ips/"+fip.ID+"/release", nil, hx), "/admin/floating-ips")
	wantContains(t, admin.get("/admin/routers/"+rt.ID+"/delete", hxTargetModal), "Delete router", "alice-router")
	wantHXLocation(t, admin.post("/admin/routers/"+rt.ID+"/delete", nil, hx), "/admin/routers")
	if fs, _, _ := e.nets.ListFloatingIPs(e.adminCtx(), network.ListOptions{}); len(fs) != 0 {
		t.Fatalf("floating IPs left: %+v", fs)
	}
	if rs, _, _ := e.nets.ListRouters(e.adminCtx(), network.ListOptions{}); len(rs) != 0 {
		t.Fatalf("routers left: %+v", rs)
	}
	wantHXLocation(t, admin.post("/admin/networks/"+ext.ID+"/delete", nil, hx), "/admin/networks")
	wantContains(t, admin.get("/admin/networks"), "No networks yet")
}

func TestAdminNetworkPagesNeedNetworking(t *testing.T) {
	e := newComputeEnv(t)
	admin := e.adminClient()
	r := admin.get("/admin/overview")
	wantStatus(t, r, http.StatusOK)
	// Quotas still has compute's section; the network pages are absent.
	wantContains(t, r, `href="/admin/quotas"`, `href="/admin/images"`)
	wantNotContains(t, r, `href="/admin/networks"`, `href="/admin/routers"`, `href="/admin/floating-ips"`)
	for _, p := range []string{"/admin/networks", "/admin/routers", "/admin/floating-ips"} {
		wantStatus(t, admin.get(p), http.StatusNotFound)
	}
	r = admin.get("/admin/quotas")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `id="quota-compute"`)
	wantNotContains(t, r, `id="quota-network"`)
	wantStatus(t, admin.post("/admin/quotas/"+e.boot.AdminProject+"/network", url.Values{"network": {"1"}}), http.StatusNotFound)
	// The services page has no network agents section.
	wantNotContains(t, admin.get("/admin/services"), `id="agents-table"`)
	// A stale page marker starts the image list again.
	wantContains(t, admin.get("/admin/images?marker=gone"), "cirros")
}

// agentList is a network.AgentSource with a fixed answer.
type agentList []network.Agent

func (a agentList) NetworkAgents(context.Context) ([]network.Agent, error) { return a, nil }

// TestAdminServicesAndAgents: the services page lists the compute services
// and the network agents with their liveness; a member is refused it.
func TestAdminServicesAndAgents(t *testing.T) {
	beat := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := newAdminPagesEnv(t, agentList{
		{ID: "a-l3", AgentType: "L3 agent", Binary: "neutron-l3-agent", Host: "node-1", Alive: true, AdminStateUp: true, HeartbeatAt: beat},
		{ID: "a-lb", AgentType: "Linux bridge agent", Binary: "neutron-linuxbridge-agent", Host: "node-2", Alive: false, AdminStateUp: true, HeartbeatAt: beat},
	})
	pa := e.createProject("proj-a")
	e.createMember("alice", "alice-Secret-1", pa)
	alice := e.client()
	alice.login("alice", "alice-Secret-1")

	r := e.adminClient().get("/admin/services")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Services and agents", `id="services-table"`, "node-1", `id="agents-table"`,
		`id="agent-a-l3"`, "neutron-l3-agent", `id="agent-a-lb"`, "neutron-linuxbridge-agent", "Alive", "Dead")
	wantStatus(t, alice.get("/admin/services"), http.StatusForbidden)
}

// TestAdminNetworkListsPage: the admin's network, router and floating IP
// lists come a page at a time with First and Next links; a stale marker
// starts again.
func TestAdminNetworkListsPage(t *testing.T) {
	saved := adminNetPageSize
	adminNetPageSize = 2
	t.Cleanup(func() { adminNetPageSize = saved })
	e := newAdminPagesEnv(t)
	actx := e.adminCtx()
	pub := e.externalNetwork("net-0", "203.0.113.0/24")
	var nets, routers, fips []string
	nets = append(nets, pub.ID)
	for i := 1; i < 5; i++ {
		n, err := e.nets.CreateNetwork(actx, network.NetworkCreate{Name: "net-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n.ID)
		rt, err := e.nets.CreateRouter(actx, network.RouterCreate{Name: "rt-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		routers = append(routers, rt.ID)
		f, err := e.nets.CreateFloatingIP(actx, network.FloatingIPCreate{FloatingNetworkID: pub.ID})
		if err != nil {
			t.Fatal(err)
		}
		fips = append(fips, f.ID)
	}
	admin := e.adminClient()
	for _, c := range []struct {
		base, row string
		ids       []string
	}{{"/admin/networks", "network-", nets}, {"/admin/routers", "router-", routers}, {"/admin/floating-ips", "floating-ip-", fips}} {
		seen := map[string]bool{}
		next, pages := c.base, 0
		for next != "" {
			r := admin.get(next)
			wantStatus(t, r, http.StatusOK)
			pages++
			rows := regexp.MustCompile(`<tr id="`+c.row+`([0-9a-f-]+)"`).FindAllStringSubmatch(r.body, -1)
			if len(rows) == 0 || len(rows) > 2 {
				t.Fatalf("%s: %d rows on a page", next, len(rows))
			}
			for _, m := range rows {
				if seen[m[1]] {
					t.Fatalf("%s: %s shown twice", c.base, m[1])
				}
				seen[m[1]] = true
			}
			if pages > 1 {
				wantContains(t, r, `href="`+c.base+`"`, "« First page")
			}
			m := regexp.MustCompile(`href="(` + regexp.QuoteMeta(c.base) + `\?marker=[^"]+)"[^>]*>Next page`).FindStringSubmatch(r.body)
			next = ""
			if m != nil {
				next = html.UnescapeString(m[1])
			}
		}
		if pages != (len(c.ids)+1)/2 || len(seen) != len(c.ids) {
			t.Fatalf("%s: %d pages, %d of %d rows", c.base, pages, len(seen), len(c.ids))
		}
		r := admin.get(c.base + "?marker=5f0c1c3e-0000-4000-8000-000000000000")
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, "Next page")
	}
}
