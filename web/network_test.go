package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

// nenv is env with the network service, and a project "proj-a" whose
// member is alice.
type nenv struct {
	*env
	nets  *network.Service
	pa    *identity.Project
	alice *identity.User
}

const alicePassword = "alice-Secret-1"

func newNetworkEnv(t testing.TB) *nenv {
	t.Helper()
	ctx := context.Background()
	d, pol, ids, boot := newTestBase(t, "http://test", network.PolicyRules())
	nets, err := network.New(ctx, d, network.Config{Policy: pol, Tokens: ids})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := New(Config{Identity: ids, DB: d, Network: nets, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: d, id: ids, web: ws, srv: srv, boot: boot}
	e.member = e.roleID("member")
	ne := &nenv{env: e, nets: nets}
	ne.pa = e.createProject("proj-a")
	ne.alice = e.createMember("alice", alicePassword, ne.pa)
	return ne
}

// aliceCtx carries alice's credentials, for fixtures and checks through
// the service.
func (e *nenv) aliceCtx() context.Context {
	e.t.Helper()
	ti, err := e.id.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{identity.MethodPassword},
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: alicePassword},
		Scope:    identity.Scope{ProjectID: e.pa.ID},
	})
	if err != nil {
		e.t.Fatalf("authenticate alice: %v", err)
	}
	return auth.WithCredentials(context.Background(), &ti.Credentials)
}

func (e *nenv) aliceClient() *client {
	c := e.client()
	c.login("alice", alicePassword)
	return c
}

// externalNetwork creates, as admin, the external network "public" with
// the subnet 203.0.113.0/24.
func (e *nenv) externalNetwork() *network.Network {
	e.t.Helper()
	ctx := e.adminCtx()
	yes := true
	n, err := e.nets.CreateNetwork(ctx, network.NetworkCreate{Name: "public", External: &yes})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.nets.CreateSubnet(ctx, network.SubnetCreate{NetworkID: n.ID, Name: "public-v4", CIDR: "203.0.113.0/24"}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// networkNamed finds a network by name as admin (any project), or nil.
func (e *nenv) networkNamed(name string) *network.Network {
	e.t.Helper()
	ns, _, err := e.nets.ListNetworks(e.adminCtx(), network.ListOptions{Filters: map[string][]string{"name": {name}}})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ns) == 0 {
		return nil
	}
	return &ns[0]
}

// wizard creates a network with one subnet through the dialog.
func (c *client) wizard(name, cidr string) resp {
	c.t.Helper()
	return c.post("/project/networks", url.Values{"name": {name}, "subnet_name": {name + "-subnet"}, "cidr": {cidr}, "dhcp": {"true"}}, hx)
}

func TestNetworkWizardCreatesNetworkAndSubnet(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	r := c.post("/project/networks", url.Values{"name": {"web"}, "subnet_name": {"web-v4"}, "cidr": {"10.1.0.0/24"},
		"gateway": {"10.1.0.254"}, "dhcp": {"true"}, "dns": {"1.1.1.1, 9.9.9.9"}, "pools": {"10.1.0.10,10.1.0.99"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	if got := toastOf(t, r)["message"]; !strings.Contains(got, "“web” created") {
		t.Fatalf("toast %q", got)
	}
	n := e.networkNamed("web")
	if n == nil || n.ProjectID != e.pa.ID || len(n.Subnets) != 1 {
		t.Fatalf("network %+v", n)
	}
	sn, err := e.nets.GetSubnet(e.aliceCtx(), n.Subnets[0])
	if err != nil {
		t.Fatal(err)
	}
	if sn.Name != "web-v4" || sn.CIDR != "10.1.0.0/24" || sn.GatewayIP != "10.1.0.254" || !sn.EnableDHCP ||
		strings.Join(sn.DNSNameservers, " ") != "1.1.1.1 9.9.9.9" ||
		len(sn.AllocationPools) != 1 || sn.AllocationPools[0] != (network.AllocationPool{Start: "10.1.0.10", End: "10.1.0.99"}) {
		t.Fatalf("subnet %+v", sn)
	}

	list := c.get("/project/networks")
	wantStatus(t, list, http.StatusOK)
	wantContains(t, list, `id="network-`+n.ID+`"`, "web-v4", "10.1.0.0/24")

	// No gateway, no DHCP.
	r = c.post("/project/networks", url.Values{"name": {"isolated"}, "cidr": {"10.2.0.0/24"}, "no_gateway": {"true"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	iso := e.networkNamed("isolated")
	sn, err = e.nets.GetSubnet(e.aliceCtx(), iso.Subnets[0])
	if err != nil || sn.GatewayIP != "" || sn.EnableDHCP {
		t.Fatalf("isolated subnet %+v %v", sn, err)
	}
}

func TestNetworkWizardFaultsLeaveNoNetwork(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	for _, tc := range []struct {
		name  string
		form  url.Values
		want  string
		fault bool // refused by the service, after the network was made
	}{
		{"invalid-cidr", url.Values{"cidr": {"10.0.0.0/33"}}, "10.0.0.0/33", true},
		{"not-a-cidr", url.Values{"cidr": {"banana"}}, "banana", true},
		{"overlapping-pools", url.Values{"cidr": {"10.9.0.0/24"}, "pools": {"10.9.0.10,10.9.0.50\n10.9.0.40,10.9.0.60"}}, "overlapping", true},
		{"gateway-outside", url.Values{"cidr": {"10.8.0.0/24"}, "gateway": {"192.168.1.1"}}, "192.168.1.1", true},
		{"missing-cidr", url.Values{}, "Enter the subnet", false},
		{"bad-pool-syntax", url.Values{"cidr": {"10.7.0.0/24"}, "pools": {"10.7.0.10"}}, "start,end", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("name", "net-"+tc.name)
			r := c.post("/project/networks", tc.form, hx)
			wantStatus(t, r, http.StatusUnprocessableEntity)
			wantContains(t, r, `id="network-form"`, tc.want, `value="net-`+tc.name+`"`)
			if tc.fault {
				wantContains(t, r, `class="alert alert-error"`)
			}
			if n := e.networkNamed("net-" + tc.name); n != nil {
				t.Fatalf("network left behind: %+v", n)
			}
		})
	}
}

func TestNetworkPagesRender(t *testing.T) {
	e := newNetworkEnv(t)
	pub := e.externalNetwork()
	c := e.aliceClient()
	wantStatus(t, c.wizard("app", "10.3.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("app")
	ctx := e.aliceCtx()
	rt, err := e.nets.CreateRouter(ctx, network.RouterCreate{Name: "edge", Gateway: &network.GatewayRequest{NetworkID: pub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(ctx, rt.ID, n.Subnets[0], ""); err != nil {
		t.Fatal(err)
	}
	sg, err := e.nets.CreateSecurityGroup(ctx, network.SecurityGroupCreate{Name: "web-sg", Description: "front ends"})
	if err != nil {
		t.Fatal(err)
	}
	fip, err := e.nets.CreateFloatingIP(ctx, network.FloatingIPCreate{FloatingNetworkID: pub.ID})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/project/networks", []string{`id="network-` + n.ID + `"`, `id="network-` + pub.ID + `"`, "10.3.0.0/24", "Create network"}},
		{"/project/networks/" + n.ID, []string{"app-subnet", "10.3.0.1", "network:router_interface", "Router edge", "network:dhcp"}},
		{"/project/routers", []string{`id="router-` + rt.ID + `"`, "edge", "public"}},
		{"/project/routers/" + rt.ID, []string{"Interfaces", "10.3.0.1", "app-subnet", "Clear gateway", "203.0.113."}},
		{"/project/security-groups", []string{"web-sg", "front ends", "default"}},
		{"/project/security-groups/" + sg.ID, []string{"web-sg", `id="rule-form"`, "SSH", "HTTPS", "egress"}},
		{"/project/floating-ips", []string{`id="fip-` + fip.ID + `"`, fip.FloatingIPAddress, "Not associated", "public"}},
		{"/project/network-topology", []string{`id="topology"`, "app", "edge"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			full := c.get(tc.path)
			wantStatus(t, full, http.StatusOK)
			if !isFullPage(full.body) {
				t.Fatal("plain request got a fragment")
			}
			wantContains(t, full, tc.want...)
			wantContains(t, full, `id="nav-network"`, `href="/project/floating-ips"`, `aria-current="page"`)
			frag := c.get(tc.path, hx)
			wantStatus(t, frag, http.StatusOK)
			if isFullPage(frag.body) {
				t.Fatal("htmx request got a full page")
			}
			wantContains(t, frag, tc.want...)
		})
	}

	// The dialogs: in #modal-body for htmx, as pages otherwise.
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/project/networks/new", `id="network-form"`},
		{"/project/networks/" + n.ID + "/delete", "Delete the network"},
		{"/project/routers/new", `id="router-form"`},
		{"/project/routers/" + rt.ID + "/gateway", `id="gateway-form"`},
		{"/project/routers/" + rt.ID + "/delete", "Delete the router"},
		{"/project/security-groups/new", `id="sg-form"`},
		{"/project/security-groups/" + sg.ID + "/delete", "Delete the security group"},
		{"/project/floating-ips/new", `id="fip-allocate-form"`},
		{"/project/floating-ips/" + fip.ID + "/associate", `id="fip-associate-form"`},
		{"/project/floating-ips/" + fip.ID + "/delete", "Release the floating IP"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			modal := c.get(tc.path, hxTargetModal)
			wantStatus(t, modal, http.StatusOK)
			wantContains(t, modal, `id="modal-title"`, tc.want, `name="csrf_token"`)
			page := c.get(tc.path)
			wantStatus(t, page, http.StatusOK)
			if !isFullPage(page.body) {
				t.Fatal("plain request got a fragment")
			}
			wantContains(t, page, tc.want)
		})
	}
}

func TestNetworkPagesEmptyStatesAndNav(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	for path, want := range map[string]string{
		"/project/networks":         "No networks yet",
		"/project/routers":          "No routers yet",
		"/project/floating-ips":     "No floating IPs",
		"/project/network-topology": "Nothing to draw yet",
	} {
		r := c.get(path)
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r, want)
	}
	// Without a network service there are no network pages and no nav.
	plain := newEnv(t)
	pc := plain.adminClient()
	wantNotContains(t, pc.get("/project/overview"), `id="nav-network"`)
	wantStatus(t, pc.get("/project/networks"), http.StatusNotFound)
}

func TestRouterAddRemoveInterface(t *testing.T) {
	e := newNetworkEnv(t)
	pub := e.externalNetwork()
	c := e.aliceClient()
	wantStatus(t, c.wizard("back", "10.4.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("back")

	r := c.post("/project/routers", url.Values{"name": {"gw"}, "external_network": {pub.ID}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	rs, _, err := e.nets.ListRouters(e.aliceCtx(), network.ListOptions{})
	if err != nil || len(rs) != 1 || rs[0].Gateway == nil || rs[0].Gateway.NetworkID != pub.ID {
		t.Fatalf("routers %+v %v", rs, err)
	}
	rt := rs[0]
	page := "/project/routers/" + rt.ID
	wantContains(t, c.get(page), `id="interface-form"`, "back: back-subnet 10.4.0.0/24", "No interfaces")

	r = c.post(page+"/interfaces", url.Values{"subnet_id": {n.Subnets[0]}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	ports, _, err := e.nets.ListPorts(e.aliceCtx(), network.ListOptions{Filters: map[string][]string{
		"device_id": {rt.ID}, "device_owner": {network.OwnerRouterInterface}}})
	if err != nil || len(ports) != 1 {
		t.Fatalf("interface ports %+v %v", ports, err)
	}
	detail := c.get(page)
	wantContains(t, detail, `id="interface-`+ports[0].ID+`"`, "10.4.0.1")
	// The attached subnet is no longer offered.
	wantNotContains(t, detail, "back: back-subnet")

	// Adding it again is refused inline, beside the select.
	r = c.post(page+"/interfaces", url.Values{"subnet_id": {n.Subnets[0]}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="field-error"`, `id="interfaces-table"`)

	// A router with an interface cannot be deleted; the refusal is in words.
	r = c.post(page+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="alert alert-error"`, "interface")

	wantContains(t, c.get(page+"/interfaces/"+ports[0].ID+"/remove", hxTargetModal), "Remove the router")
	r = c.post(page+"/interfaces/"+ports[0].ID+"/remove", nil, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	wantContains(t, c.get(page), "No interfaces", "back: back-subnet")

	// Gateway: clear, then set again.
	wantStatus(t, c.post(page+"/gateway/clear", nil, hxTargetModal), http.StatusNoContent)
	wantContains(t, c.get(page), "No gateway", "Set gateway")
	wantStatus(t, c.post(page+"/gateway", url.Values{"external_network": {pub.ID}}, hxTargetModal), http.StatusNoContent)
	got, err := e.nets.GetRouter(e.aliceCtx(), rt.ID)
	if err != nil || got.Gateway == nil {
		t.Fatalf("router %+v %v", got, err)
	}

	r = c.post(page+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	if _, err := e.nets.GetRouter(e.aliceCtx(), rt.ID); err == nil {
		t.Fatal("router still there")
	}
}

func TestSecurityGroupSSHPreset(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	r := c.post("/project/security-groups", url.Values{"name": {"ssh-only"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	gs, _, err := e.nets.ListSecurityGroups(e.aliceCtx(), network.ListOptions{Filters: map[string][]string{"name": {"ssh-only"}}})
	if err != nil || len(gs) != 1 {
		t.Fatalf("groups %+v %v", gs, err)
	}
	g := gs[0]
	before := len(g.Rules)
	page := "/project/security-groups/" + g.ID

	r = c.post(page+"/rules/preset/ssh", nil, hx)
	wantStatus(t, r, http.StatusNoContent)
	if msg := toastOf(t, r)["message"]; msg != "SSH allowed from anywhere." {
		t.Fatalf("toast %q", msg)
	}
	got, err := e.nets.GetSecurityGroup(e.aliceCtx(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rules) != before+1 {
		t.Fatalf("rules %d -> %d", before, len(got.Rules))
	}
	var added *network.SecurityGroupRule
	for i, rl := range got.Rules {
		if rl.Protocol == "tcp" {
			if added != nil {
				t.Fatalf("two tcp rules: %+v", got.Rules)
			}
			added = &got.Rules[i]
		}
	}
	if added == nil || added.Direction != network.DirIngress || added.Ethertype != network.EtherIPv4 ||
		added.PortRangeMin == nil || *added.PortRangeMin != 22 || added.PortRangeMax == nil || *added.PortRangeMax != 22 ||
		(added.RemoteIPPrefix != "0.0.0.0/0" && added.RemoteIPPrefix != "") || added.RemoteGroupID != "" {
		t.Fatalf("ssh rule %+v", added)
	}
	detail := c.get(page)
	wantContains(t, detail, `id="sg-rule-`+added.ID+`"`, "0.0.0.0/0")

	// The same preset again is a duplicate, reported as a toast.
	r = c.post(page+"/rules/preset/ssh", nil, hx)
	wantStatus(t, r, http.StatusConflict)
	if toastOf(t, r)["level"] != "error" {
		t.Fatalf("toast %v", toastOf(t, r))
	}

	// The add-rule form: a custom UDP range from a CIDR; a bad port stays inline.
	r = c.post(page+"/rules", url.Values{"direction": {"ingress"}, "ethertype": {"IPv4"}, "protocol": {"udp"},
		"port_min": {"70000"}, "remote_cidr": {"10.0.0.0/8"}}, hx)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `id="rule-form"`, "0 to 65535", `value="10.0.0.0/8"`)
	r = c.post(page+"/rules", url.Values{"direction": {"ingress"}, "ethertype": {"IPv4"}, "protocol": {"udp"},
		"port_min": {"5000"}, "port_max": {"5100"}, "remote_cidr": {"10.0.0.0/8"}}, hx)
	wantStatus(t, r, http.StatusNoContent)
	wantContains(t, c.get(page), "5000–5100", "10.0.0.0/8")

	r = c.post(page+"/rules/"+added.ID+"/delete", nil, hx)
	wantStatus(t, r, http.StatusNoContent)
	wantNotContains(t, c.get(page), `id="sg-rule-`+added.ID+`"`)

	r = c.post(page+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	wantNotContains(t, c.get("/project/security-groups"), "ssh-only")
}

func TestFloatingIPAllocateAssociateRelease(t *testing.T) {
	e := newNetworkEnv(t)
	pub := e.externalNetwork()
	c := e.aliceClient()
	wantStatus(t, c.wizard("vms", "10.5.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("vms")
	ctx := e.aliceCtx()
	rt, err := e.nets.CreateRouter(ctx, network.RouterCreate{Name: "r1", Gateway: &network.GatewayRequest{NetworkID: pub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(ctx, rt.ID, n.Subnets[0], ""); err != nil {
		t.Fatal(err)
	}
	// An instance's port, as compute would make it.
	port, err := e.nets.CreatePort(e.adminCtx(), network.PortCreate{NetworkID: n.ID, ProjectID: e.pa.ID,
		DeviceOwner: "compute:nova", DeviceID: "vm-1"})
	if err != nil {
		t.Fatal(err)
	}
	fixed := port.FixedIPs[0].IPAddress

	wantContains(t, c.get("/project/floating-ips/new", hxTargetModal), `value="`+pub.ID+`"`, "public")
	r := c.post("/project/floating-ips", url.Values{"pool": {pub.ID}}, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	fips, _, err := e.nets.ListFloatingIPs(ctx, network.ListOptions{})
	if err != nil || len(fips) != 1 {
		t.Fatalf("floating IPs %+v %v", fips, err)
	}
	fip := fips[0]
	row := `id="fip-` + fip.ID + `"`
	wantContains(t, c.get("/project/floating-ips"), row, fip.FloatingIPAddress, "Not associated")

	form := c.get("/project/floating-ips/"+fip.ID+"/associate", hxTargetModal)
	wantContains(t, form, "vm-1 — "+fixed, `value="`+port.ID+"/"+fixed+`"`)
	r = c.post("/project/floating-ips/"+fip.ID+"/associate", url.Values{"port": {port.ID + "/" + fixed}}, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	got, err := e.nets.GetFloatingIP(ctx, fip.ID)
	if err != nil || got.PortID != port.ID || got.FixedIPAddress != fixed {
		t.Fatalf("after associate %+v %v", got, err)
	}
	list := c.get("/project/floating-ips")
	wantContains(t, list, row, fixed, "vm-1", "Disassociate")

	r = c.post("/project/floating-ips/"+fip.ID+"/disassociate", nil, hx)
	wantStatus(t, r, http.StatusNoContent)
	if got, err := e.nets.GetFloatingIP(ctx, fip.ID); err != nil || got.PortID != "" {
		t.Fatalf("after disassociate %+v %v", got, err)
	}
	wantContains(t, c.get("/project/floating-ips"), "Not associated")

	wantContains(t, c.get("/project/floating-ips/"+fip.ID+"/delete", hxTargetModal), "Release the floating IP", fip.FloatingIPAddress)
	r = c.post("/project/floating-ips/"+fip.ID+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	if _, err := e.nets.GetFloatingIP(ctx, fip.ID); err == nil {
		t.Fatal("floating IP still allocated")
	}
	wantNotContains(t, c.get("/project/floating-ips"), row)
}

func TestTopologySVG(t *testing.T) {
	e := newNetworkEnv(t)
	pub := e.externalNetwork()
	c := e.aliceClient()
	wantStatus(t, c.wizard("lan", "10.6.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("lan")
	ctx := e.aliceCtx()
	rt, err := e.nets.CreateRouter(ctx, network.RouterCreate{Name: "core", Gateway: &network.GatewayRequest{NetworkID: pub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(ctx, rt.ID, n.Subnets[0], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.CreatePort(e.adminCtx(), network.PortCreate{NetworkID: n.ID, ProjectID: e.pa.ID,
		DeviceOwner: "compute:nova", DeviceID: "vm-7"}); err != nil {
		t.Fatal(err)
	}

	r := c.get("/project/network-topology/svg")
	wantStatus(t, r, http.StatusOK)
	if isFullPage(r.body) || !strings.HasPrefix(r.body, `<svg id="topology"`) {
		t.Fatalf("not the bare drawing:\n%s", r.body)
	}
	wantContains(t, r,
		`id="topo-network-`+n.ID+`"`, "lan", "10.6.0.0/24", `href="/project/networks/`+n.ID+`"`,
		`id="topo-network-`+pub.ID+`"`, "203.0.113.0/24", "external",
		`id="topo-router-`+rt.ID+`"`, "core", `href="/project/routers/`+rt.ID+`"`,
		`id="topo-instance-vm-7"`, "<line")
	// The router has a line to both networks, the instance one to lan.
	if got := strings.Count(r.body, "<line"); got != 3 {
		t.Fatalf("%d lines, want 3:\n%s", got, r.body)
	}
	wantNotContains(t, r, "<script", "style=")
}

func TestNetworkDetailOtherProjectNotFound(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("private", "10.10.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("private")

	pb := e.createProject("proj-b")
	e.createMember("bob", "bob-Secret-1", pb)
	bob := e.client()
	bob.login("bob", "bob-Secret-1")
	for _, path := range []string{"/project/networks/" + n.ID, "/project/networks/" + n.ID + "/delete"} {
		r := bob.get(path)
		wantStatus(t, r, http.StatusNotFound)
		wantNotContains(t, r, "10.10.0.0/24")
	}
	wantNotContains(t, bob.get("/project/networks"), n.ID)
	r := bob.post("/project/networks/"+n.ID+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusNotFound)
	if e.networkNamed("private") == nil {
		t.Fatal("bob deleted alice's network")
	}
}

func TestNetworkReaderCannotDelete(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("keep", "10.11.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("keep")

	e.createReader("carol", "carol-Secret-1", e.pa)
	carol := e.client()
	carol.login("carol", "carol-Secret-1")
	list := carol.get("/project/networks")
	wantStatus(t, list, http.StatusOK)
	wantContains(t, list, `id="network-`+n.ID+`"`)
	wantNotContains(t, list, "Create network", "/delete")

	r := carol.post("/project/networks/"+n.ID+"/delete", nil, hxTargetModal)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, `class="alert alert-error"`, "Delete the network",
		"Your role in this project does not allow you to delete this network.")
	wantNotContains(t, r, "rule:", "delete_network")

	// Without htmx the refusal is the confirmation page, in the same words.
	r = carol.post("/project/networks/"+n.ID+"/delete", nil)
	wantStatus(t, r, http.StatusForbidden)
	if !isFullPage(r.body) {
		t.Fatal("plain post got a fragment")
	}
	wantContains(t, r, "does not allow you to delete this network")
	if e.networkNamed("keep") == nil {
		t.Fatal("the reader deleted the network")
	}
}

func TestNetworkAddSubnetOverlapInline(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("multi", "10.12.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("multi")
	page := "/project/networks/" + n.ID
	wantContains(t, c.get(page), `href="`+page+`/subnets/new"`)
	form := c.get(page+"/subnets/new", hxTargetModal)
	wantStatus(t, form, http.StatusOK)
	wantContains(t, form, `id="network-form"`, "Add subnet")
	wantNotContains(t, form, "Network name")

	r := c.post(page+"/subnets", url.Values{"cidr": {"10.12.0.128/25"}, "dhcp": {"true"}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="alert alert-error"`, "overlaps with another subnet", `value="10.12.0.128/25"`)
	if got := e.networkNamed("multi"); len(got.Subnets) != 1 {
		t.Fatalf("subnets %v", got.Subnets)
	}

	r = c.post(page+"/subnets", url.Values{"subnet_name": {"second"}, "cidr": {"10.13.0.0/24"}}, hxTargetModal)
	wantStatus(t, r, http.StatusNoContent)
	wantContains(t, c.get(page), "second", "10.13.0.0/24", "10.12.0.0/24")
}

// TestSubnetDelete: the network's owner deletes a subnet from the network
// page after a confirmation; one a router interface uses is refused in
// words and stays; a subnet named under another network is not found; a
// reader is offered no delete and is refused one.
func TestSubnetDelete(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("two", "10.20.0.0/24"), http.StatusNoContent)
	wantStatus(t, c.wizard("other", "10.21.0.0/24"), http.StatusNoContent)
	n, other := e.networkNamed("two"), e.networkNamed("other")
	page := "/project/networks/" + n.ID
	wantStatus(t, c.post(page+"/subnets", url.Values{"subnet_name": {"spare"}, "cidr": {"10.30.0.0/24"}, "dhcp": {"on"}}, hxTargetModal), http.StatusNoContent)
	n = e.networkNamed("two")
	if len(n.Subnets) != 2 {
		t.Fatalf("subnets %v", n.Subnets)
	}
	used, spare := n.Subnets[0], n.Subnets[1]
	del := func(id string) string { return page + "/subnets/" + id + "/delete" }
	wantContains(t, c.get(page), `href="`+del(used)+`"`, `href="`+del(spare)+`"`)

	rt, err := e.nets.CreateRouter(e.aliceCtx(), network.RouterCreate{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(e.aliceCtx(), rt.ID, used, ""); err != nil {
		t.Fatal(err)
	}
	r := c.post(del(used), nil, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, `class="alert alert-error"`, "Delete the subnet", "One or more ports have an IP allocation from this subnet.")
	if _, err := e.nets.GetSubnet(e.aliceCtx(), used); err != nil {
		t.Fatalf("the used subnet went: %v", err)
	}

	// The subnet of another network, under this one's URL: not found.
	wantStatus(t, c.get(page+"/subnets/"+other.Subnets[0]+"/delete", hxTargetModal), http.StatusNotFound)
	wantStatus(t, c.post(page+"/subnets/"+other.Subnets[0]+"/delete", nil, hxTargetModal), http.StatusNotFound)

	e.createReader("carol", "carol-Secret-1", e.pa)
	carol := e.client()
	carol.login("carol", "carol-Secret-1")
	wantNotContains(t, carol.get(page), "/subnets/"+spare+"/delete")
	r = carol.post(del(spare), nil, hxTargetModal)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "Your role in this project does not allow you to delete this subnet.")

	wantContains(t, c.get(del(spare), hxTargetModal), "Delete the subnet", "spare 10.30.0.0/24")
	wantStatus(t, c.post(del(spare), nil, hxTargetModal), http.StatusNoContent)
	if _, err := e.nets.GetSubnet(e.aliceCtx(), spare); err == nil {
		t.Fatal("the spare subnet is still there")
	}
	wantNotContains(t, c.get(page), "10.30.0.0/24")
}

// TestNetworkRouterGroupEdit: the owner renames a network, a router and a
// security group from their pages; an admin may also share the network;
// the default group keeps its name (Neutron's refusal, in the form); a
// reader's edit is refused in words.
func TestNetworkRouterGroupEdit(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("old", "10.40.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("old")
	page := "/project/networks/" + n.ID
	wantContains(t, c.get(page), `href="`+page+`/edit"`)
	r := c.get(page+"/edit", hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `value="old"`, "Save network")
	wantNotContains(t, r, `name="shared"`)
	r = c.post(page+"/edit", url.Values{"name": {"new"}, "description": {"front end"}, "shared": {"true"}}, hxTargetModal)
	wantHXDone(t, r, page, "Network “new” saved.")
	got, err := e.nets.GetNetwork(e.aliceCtx(), n.ID)
	if err != nil || got.Name != "new" || got.Description != "front end" || got.Shared {
		t.Fatalf("network after edit %+v %v", got, err)
	}
	r = c.post(page+"/edit", url.Values{"name": {strings.Repeat("x", 300)}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error")

	// An admin sees and sets sharing.
	admin := e.adminClient()
	wantContains(t, admin.get(page+"/edit", hxTargetModal), `name="shared"`)
	wantHXDone(t, admin.post(page+"/edit", url.Values{"name": {"new"}, "shared": {"true"}}, hxTargetModal), page, "saved")
	if got, _ := e.nets.GetNetwork(e.aliceCtx(), n.ID); !got.Shared {
		t.Fatal("the admin's share did not take")
	}

	rt, err := e.nets.CreateRouter(e.aliceCtx(), network.RouterCreate{Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	rpage := "/project/routers/" + rt.ID
	wantContains(t, c.get(rpage), `href="`+rpage+`/edit"`)
	wantHXDone(t, c.post(rpage+"/edit", url.Values{"name": {"edge"}, "description": {"to public"}}, hxTargetModal), rpage, "Router “edge” saved.")
	if got, _ := e.nets.GetRouter(e.aliceCtx(), rt.ID); got.Name != "edge" || got.Description != "to public" {
		t.Fatalf("router after edit %+v", got)
	}

	sg, err := e.nets.CreateSecurityGroup(e.aliceCtx(), network.SecurityGroupCreate{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	gpage := "/project/security-groups/" + sg.ID
	wantHXDone(t, c.post(gpage+"/edit", url.Values{"name": {"www"}, "description": {"http"}}, hxTargetModal), gpage, "Security group “www” saved.")
	if got, _ := e.nets.GetSecurityGroup(e.aliceCtx(), sg.ID); got.Name != "www" || got.Description != "http" {
		t.Fatalf("group after edit %+v", got)
	}
	def, _, err := e.nets.ListSecurityGroups(e.aliceCtx(), network.ListOptions{Filters: map[string][]string{"name": {"default"}}})
	if err != nil || len(def) != 1 {
		t.Fatalf("default group %v %v", def, err)
	}
	dpage := "/project/security-groups/" + def[0].ID
	r = c.post(dpage+"/edit", url.Values{"name": {"renamed"}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error", "default")
	wantHXDone(t, c.post(dpage+"/edit", url.Values{"name": {"default"}, "description": {"mine"}}, hxTargetModal), dpage, "saved")

	e.createReader("carol", "carol-Secret-1", e.pa)
	carol := e.client()
	carol.login("carol", "carol-Secret-1")
	wantNotContains(t, carol.get(page), page+"/edit")
	r = carol.post(page+"/edit", url.Values{"name": {"carols"}}, hxTargetModal)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "does not allow you to change this network")
	if got, _ := e.nets.GetNetwork(e.aliceCtx(), n.ID); got.Name != "new" {
		t.Fatalf("the reader renamed the network: %+v", got)
	}
}

// TestSubnetEdit: the subnet dialog shows the subnet as it is (CIDR fixed)
// and saves name, DHCP, DNS servers, gateway and pools; a gateway outside
// the subnet is refused in the form; a reader may not edit.
func TestSubnetEdit(t *testing.T) {
	e := newNetworkEnv(t)
	c := e.aliceClient()
	wantStatus(t, c.wizard("edits", "10.60.0.0/24"), http.StatusNoContent)
	n := e.networkNamed("edits")
	sid := n.Subnets[0]
	page := "/project/networks/" + n.ID
	edit := page + "/subnets/" + sid + "/edit"
	wantContains(t, c.get(page), `href="`+edit+`"`)
	r := c.get(edit, hxTargetModal)
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, `value="edits-subnet"`, `<p class="mono">10.60.0.0/24</p>`, `value="10.60.0.1"`, "10.60.0.2,10.60.0.254", "Save subnet")
	wantNotContains(t, r, `name="cidr"`)

	r = c.post(edit, url.Values{"subnet_name": {"renamed"}, "gateway": {"192.168.1.1"}, "dhcp": {"true"}}, hxTargetModal)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "alert-error", "Save subnet")

	r = c.post(edit, url.Values{"subnet_name": {"renamed"}, "dns": {"10.60.0.53\n1.1.1.1"},
		"pools": {"10.60.0.10,10.60.0.100"}, "gateway": {"10.60.0.1"}}, hxTargetModal)
	wantHXDone(t, r, page, "Subnet “renamed 10.60.0.0/24” saved.")
	sn, err := e.nets.GetSubnet(e.aliceCtx(), sid)
	if err != nil || sn.Name != "renamed" || sn.EnableDHCP || !slices.Equal(sn.DNSNameservers, []string{"10.60.0.53", "1.1.1.1"}) ||
		len(sn.AllocationPools) != 1 || sn.AllocationPools[0].End != "10.60.0.100" || sn.GatewayIP != "10.60.0.1" {
		t.Fatalf("subnet after edit %+v %v", sn, err)
	}
	// No gateway, DHCP back on; blank pools keep them.
	wantHXDone(t, c.post(edit, url.Values{"subnet_name": {"renamed"}, "no_gateway": {"true"}, "dhcp": {"true"}}, hxTargetModal), page, "saved")
	sn, _ = e.nets.GetSubnet(e.aliceCtx(), sid)
	if sn.GatewayIP != "" || !sn.EnableDHCP || len(sn.DNSNameservers) != 0 || len(sn.AllocationPools) != 1 {
		t.Fatalf("subnet after the second edit %+v", sn)
	}

	e.createReader("carol", "carol-Secret-1", e.pa)
	carol := e.client()
	carol.login("carol", "carol-Secret-1")
	wantNotContains(t, carol.get(page), edit)
	r = carol.post(edit, url.Values{"subnet_name": {"carols"}}, hxTargetModal)
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r, "does not allow you to change this subnet")
}
