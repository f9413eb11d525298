package dataplane_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/network/dataplane"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// plane is an agent.NetworkPlane that records every call and keeps the
// state it was left in.
type plane struct {
	mu       sync.Mutex
	failNext int            // how many next calls fail as Unavailable
	calls    []string       // "apply-network <id>", "delete-port <id>", ...
	state    map[string]any // "network/<id>", "router/<id>", "port/<id>"
	keep     *agentapi.NetworkKeep
	// onPrune runs as a prune begins, outside the lock.
	onPrune func()
}

func newPlane() *plane { return &plane{state: map[string]any{}} }

func (p *plane) rec(call, key, id string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call+" "+id)
	if p.failNext > 0 {
		p.failNext--
		return fault.New(fault.Unavailable, "the plane is busy")
	}
	if v == nil {
		delete(p.state, key+"/"+id)
	} else {
		p.state[key+"/"+id] = v
	}
	return nil
}

func (p *plane) ApplyNetwork(_ context.Context, s agentapi.NetworkSpec) error {
	return p.rec("apply-network", "network", s.ID, s)
}
func (p *plane) DeleteNetwork(_ context.Context, id string) error {
	return p.rec("delete-network", "network", id, nil)
}
func (p *plane) ApplyRouter(_ context.Context, s agentapi.RouterSpec) error {
	return p.rec("apply-router", "router", s.ID, s)
}
func (p *plane) DeleteRouter(_ context.Context, id string) error {
	return p.rec("delete-router", "router", id, nil)
}
func (p *plane) ApplyPortSecurity(_ context.Context, s agentapi.PortSecuritySpec) error {
	return p.rec("apply-port", "port", s.PortID, s)
}
func (p *plane) DeletePortSecurity(_ context.Context, id string) error {
	return p.rec("delete-port", "port", id, nil)
}

// Prune drops every network, router and port the keep lists do not name,
// as netplane's Cleanup does on a host.
func (p *plane) Prune(_ context.Context, keep agentapi.NetworkKeep) error {
	if p.onPrune != nil {
		p.onPrune()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "prune")
	p.keep = &keep
	lists := map[string][]string{"network": keep.Networks, "router": keep.Routers, "port": keep.Ports}
	for k := range p.state {
		kind, id, _ := strings.Cut(k, "/")
		if !slices.Contains(lists[kind], id) {
			delete(p.state, k)
		}
	}
	return nil
}

func (p *plane) network(id string) (agentapi.NetworkSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.state["network/"+id].(agentapi.NetworkSpec)
	return v, ok
}

func (p *plane) router(id string) (agentapi.RouterSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.state["router/"+id].(agentapi.RouterSpec)
	return v, ok
}

func (p *plane) port(id string) (agentapi.PortSecuritySpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.state["port/"+id].(agentapi.PortSecuritySpec)
	return v, ok
}

func (p *plane) count(call string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c == call {
			n++
		}
	}
	return n
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	db    *db.DB
	svc   *network.Service
	reg   *hosts.Registry
	srv   *httptest.Server
	sync  *dataplane.Syncer
	admin context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	e := &env{db: d, admin: as("admin-project", "admin", "member", "reader")}
	e.reg, err = hosts.New(ctx, d, hosts.Config{HeartbeatInterval: time.Second, Logger: quiet(),
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/agents", e.reg.Handler())
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)

	e.sync = dataplane.New(dataplane.Config{Hosts: e.reg, Logger: quiet(), Debounce: 200 * time.Millisecond,
		RetryBackoff: 20 * time.Millisecond,
		DeviceName: func(_ context.Context, id string) string {
			if id == "vm-1" {
				return "My VM"
			}
			return ""
		}})
	t.Cleanup(func() { e.sync.Close() })
	e.svc, err = network.New(ctx, d, network.Config{Policy: policy.New(network.PolicyRules()), Notifier: e.sync})
	if err != nil {
		t.Fatal(err)
	}
	e.sync.SetNetworks(e.svc)
	return e
}

func as(project string, roles ...string) context.Context {
	return auth.WithCredentials(context.Background(), &auth.Credentials{
		UserID: "user-" + project, ProjectID: project, Roles: roles,
	})
}

func (e *env) token(t *testing.T) string {
	t.Helper()
	tok, err := e.reg.CreateJoinToken(e.admin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startAgent runs a real agent with p as its network plane and returns
// its host ID.
func (e *env) startAgent(t *testing.T, hostname string, p *plane) string {
	return e.startAgentEvery(t, hostname, p, time.Hour)
}

func (e *env) startAgentEvery(t *testing.T, hostname string, p *plane, heartbeat time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	drv := fake.New(fake.Config{})
	cfg := agent.Config{
		ControllerURL: e.srv.URL, JoinToken: e.token(t), Hostname: hostname, Listener: ln,
		StateDir: t.TempDir(), Driver: drv, Network: p, HeartbeatInterval: heartbeat, Logger: quiet(),
		OnReady: func(agentID, _ string) { id = agentID; close(ready) },
	}
	go func() { done <- agent.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		<-done
		drv.Close()
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready after 10 s")
	}
	return id
}

func (e *env) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.sync.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSyncer(t *testing.T) {
	e := newEnv(t)
	netPlane, computePlane := newPlane(), newPlane()
	e.startAgent(t, "a-netnode", netPlane) // first by hostname: the network host
	e.startAgent(t, "compute-b", computePlane)
	member := as("p1", "member", "reader")

	// A network with a subnet: the network host builds it with its DHCP
	// server; the compute host, with no port on it, does not.
	n, err := e.svc.CreateNetwork(member, network.NetworkCreate{Name: "private"})
	ok(t, err)
	sn, err := e.svc.CreateSubnet(member, network.SubnetCreate{NetworkID: n.ID, CIDR: "10.0.0.0/24",
		DNSNameservers: []string{"8.8.8.8"}})
	ok(t, err)
	e.flush(t)
	ns, found := netPlane.network(n.ID)
	if !found {
		t.Fatal("the network host has no network")
	}
	if ns.Bridge != "brq"+n.ID[:11] || ns.Type != "vxlan" || ns.SegmentationID == 0 || ns.MTU != 1450 {
		t.Fatalf("network spec: %+v", ns)
	}
	if len(ns.Subnets) != 1 || ns.Subnets[0].CIDR != "10.0.0.0/24" || ns.Subnets[0].GatewayIP != "10.0.0.1" ||
		!ns.Subnets[0].EnableDHCP || ns.Subnets[0].DHCPPortIP != "10.0.0.2" || ns.Subnets[0].DHCPStart != "10.0.0.2" ||
		ns.Subnets[0].DHCPEnd != "10.0.0.254" || len(ns.Subnets[0].DNSNameservers) != 1 {
		t.Fatalf("subnet spec: %+v", ns.Subnets)
	}
	if ns.DHCPPort == nil || ns.DHCPPort.MAC == "" || len(ns.DHCPHosts) != 0 {
		t.Fatalf("DHCP: %+v, hosts %+v", ns.DHCPPort, ns.DHCPHosts)
	}
	if _, found := computePlane.network(n.ID); found {
		t.Fatal("the compute host got a network it has no port on")
	}

	// An instance's port bound to the compute host.
	p, err := e.svc.CreatePort(member, network.PortCreate{NetworkID: n.ID, DeviceID: "vm-1", DeviceOwner: "compute:nova"})
	ok(t, err)
	p, err = e.svc.UpdatePort(e.admin, p.ID, network.PortUpdate{BindingHostID: ptr("compute-b")})
	ok(t, err)
	ip := p.FixedIPs[0].IPAddress
	e.flush(t)
	cs, found := computePlane.network(n.ID)
	if !found || cs.DHCPPort != nil || cs.Bridge != ns.Bridge {
		t.Fatalf("compute host network: %+v, %v", cs, found)
	}
	ps, found := computePlane.port(p.ID)
	if !found {
		t.Fatal("the compute host has no port security")
	}
	if ps.TapName != "tap"+p.ID[:11] || ps.MAC != p.MACAddress || len(ps.IPs) != 1 || ps.IPs[0] != ip || !ps.PortSecurityEnabled {
		t.Fatalf("port spec: %+v", ps)
	}
	// The default group: egress anywhere (IPv4, IPv6), ingress from its
	// members (this port).
	var egress4, ingressSelf bool
	for _, r := range ps.Rules {
		if r.Direction == "egress" && r.EtherType == "IPv4" && r.RemoteIPPrefix == "" && r.Protocol == "" {
			egress4 = true
		}
		if r.Direction == "ingress" && r.EtherType == "IPv4" && r.RemoteIPPrefix == ip+"/32" {
			ingressSelf = true
		}
	}
	if !egress4 || !ingressSelf {
		t.Fatalf("default group rules: %+v", ps.Rules)
	}
	if _, found := netPlane.port(p.ID); found {
		t.Fatal("the network host got the port's security")
	}
	ns, _ = netPlane.network(n.ID)
	if len(ns.DHCPHosts) != 1 || ns.DHCPHosts[0].MAC != p.MACAddress || ns.DHCPHosts[0].IP != ip || ns.DHCPHosts[0].Hostname != "my-vm" {
		t.Fatalf("DHCP hosts: %+v", ns.DHCPHosts)
	}

	// A rule added to the default group reaches the port.
	_, err = e.svc.CreateSecurityGroupRule(member, network.SecurityGroupRuleCreate{SecurityGroupID: p.SecurityGroups[0],
		Direction: "ingress", Protocol: "tcp", PortRangeMin: ptr(22), PortRangeMax: ptr(22), RemoteIPPrefix: "0.0.0.0/0"})
	ok(t, err)
	e.flush(t)
	ps, _ = computePlane.port(p.ID)
	var ssh bool
	for _, r := range ps.Rules {
		if r.Direction == "ingress" && r.Protocol == "tcp" && r.PortRangeMin != nil && *r.PortRangeMin == 22 && r.RemoteIPPrefix == "" {
			ssh = true
		}
	}
	if !ssh {
		t.Fatalf("no SSH rule after the group changed: %+v", ps.Rules)
	}

	// A router with a gateway, an interface and a floating IP.
	ext, err := e.svc.CreateNetwork(e.admin, network.NetworkCreate{Name: "public", External: ptr(true),
		NetworkType: network.TypeFlat, PhysicalNetwork: "public"})
	ok(t, err)
	_, err = e.svc.CreateSubnet(e.admin, network.SubnetCreate{NetworkID: ext.ID, CIDR: "172.24.4.0/24", EnableDHCP: ptr(false)})
	ok(t, err)
	rt, err := e.svc.CreateRouter(member, network.RouterCreate{Name: "r1", Gateway: &network.GatewayRequest{NetworkID: ext.ID}})
	ok(t, err)
	_, err = e.svc.AddRouterInterface(member, rt.ID, sn.ID, "")
	ok(t, err)
	fip, err := e.svc.CreateFloatingIP(member, network.FloatingIPCreate{FloatingNetworkID: ext.ID, PortID: p.ID})
	ok(t, err)
	e.flush(t)
	rs, found := netPlane.router(rt.ID)
	if !found {
		t.Fatal("the network host has no router")
	}
	if rs.Gateway == nil || rs.Gateway.Bridge != "br-ex" || rs.Gateway.GatewayIP != "172.24.4.1" ||
		!strings.HasPrefix(rs.Gateway.IPCIDR, "172.24.4.") || !strings.HasSuffix(rs.Gateway.IPCIDR, "/24") || !rs.EnableSNAT {
		t.Fatalf("router gateway: %+v (snat %v)", rs.Gateway, rs.EnableSNAT)
	}
	if len(rs.Interfaces) != 1 || rs.Interfaces[0].IPCIDR != "10.0.0.1/24" || rs.Interfaces[0].Bridge != ns.Bridge || rs.Interfaces[0].MTU != 1450 {
		t.Fatalf("router interfaces: %+v", rs.Interfaces)
	}
	if len(rs.FloatingIPs) != 1 || rs.FloatingIPs[0].FloatingIP != fip.FloatingIPAddress || rs.FloatingIPs[0].FixedIP != ip {
		t.Fatalf("router floating IPs: %+v", rs.FloatingIPs)
	}
	if _, found := computePlane.router(rt.ID); found {
		t.Fatal("the compute host got the router")
	}
	if _, found := netPlane.network(ext.ID); found {
		t.Fatal("the external network was pushed as a bridge")
	}

	// Disassociating the floating IP re-pushes the router without it.
	_, err = e.svc.UpdateFloatingIP(member, fip.ID, network.FloatingIPUpdate{SetPort: true})
	ok(t, err)
	e.flush(t)
	if rs, _ = netPlane.router(rt.ID); len(rs.FloatingIPs) != 0 {
		t.Fatalf("floating IPs after disassociation: %+v", rs.FloatingIPs)
	}

	// A burst of changes to one network: at most two pushes.
	before := netPlane.count("apply-network " + n.ID)
	for i := range 10 {
		_, err := e.svc.UpdateNetwork(member, n.ID, network.NetworkUpdate{Name: ptr("private-" + string(rune('a'+i)))})
		ok(t, err)
	}
	e.flush(t)
	if pushes := netPlane.count("apply-network "+n.ID) - before; pushes < 1 || pushes > 2 {
		t.Fatalf("10 updates made %d pushes", pushes)
	}

	// Resync pushes everything again.
	before = computePlane.count("apply-port " + p.ID)
	ok(t, e.sync.Resync(context.Background()))
	e.flush(t)
	if computePlane.count("apply-port "+p.ID) == before {
		t.Fatal("resync did not push the port")
	}

	// Deletes.
	ok(t, e.svc.DeleteFloatingIP(member, fip.ID))
	_, err = e.svc.RemoveRouterInterface(member, rt.ID, sn.ID, "")
	ok(t, err)
	ok(t, e.svc.DeleteRouter(member, rt.ID))
	e.flush(t)
	if _, found := netPlane.router(rt.ID); found || netPlane.count("delete-router "+rt.ID) == 0 {
		t.Fatal("the router is still on the network host")
	}
	ok(t, e.svc.DeletePort(member, p.ID))
	e.flush(t)
	if _, found := computePlane.port(p.ID); found || computePlane.count("delete-port "+p.ID) == 0 {
		t.Fatal("the port's security is still on the compute host")
	}
	if _, found := computePlane.network(n.ID); found {
		t.Fatal("the network is still on the compute host without ports")
	}
	if ns, _ = netPlane.network(n.ID); len(ns.DHCPHosts) != 0 {
		t.Fatalf("DHCP hosts after the port went: %+v", ns.DHCPHosts)
	}
	ok(t, e.svc.DeleteSubnet(member, sn.ID))
	ok(t, e.svc.DeleteNetwork(member, n.ID))
	e.flush(t)
	if _, found := netPlane.network(n.ID); found || netPlane.count("delete-network "+n.ID) == 0 {
		t.Fatal("the network is still on the network host")
	}
}

func TestSyncerRetriesUnavailable(t *testing.T) {
	e := newEnv(t)
	p := newPlane()
	e.startAgent(t, "netnode", p)
	p.mu.Lock()
	p.failNext = 2
	p.mu.Unlock()
	member := as("p1", "member", "reader")
	n, err := e.svc.CreateNetwork(member, network.NetworkCreate{Name: "n"})
	ok(t, err)
	e.flush(t)
	if _, found := p.network(n.ID); !found || p.count("apply-network "+n.ID) != 3 {
		t.Fatalf("after two Unavailable answers: found %v, %d calls", found, p.count("apply-network "+n.ID))
	}
}

func TestSyncerResyncsJoiningHost(t *testing.T) {
	e := newEnv(t)
	e.reg.Subscribe(e.sync)
	netPlane := newPlane()
	e.startAgent(t, "a-netnode", netPlane)
	member := as("p1", "member", "reader")
	n, err := e.svc.CreateNetwork(member, network.NetworkCreate{Name: "n"})
	ok(t, err)
	_, err = e.svc.CreateSubnet(member, network.SubnetCreate{NetworkID: n.ID, CIDR: "10.1.0.0/24"})
	ok(t, err)
	port, err := e.svc.CreatePort(e.admin, network.PortCreate{NetworkID: n.ID, ProjectID: "p1", DeviceID: "vm-9",
		DeviceOwner: "compute:nova", BindingHostID: "compute-late"})
	ok(t, err)
	e.flush(t) // the port's host is not known yet: nothing to push it to

	// The host joins and heartbeats: it loses what was deleted while it
	// was away and gets the network and the port.
	late := newPlane()
	late.state["network/0d5d7a55-dead-4000-8000-000000000000"] = agentapi.NetworkSpec{}
	late.state["router/0d5d7a55-dead-4000-8000-000000000001"] = agentapi.RouterSpec{}
	e.startAgentEvery(t, "compute-late", late, 50*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, hasNet := late.network(n.ID)
		_, hasPort := late.port(port.ID)
		late.mu.Lock()
		stale := len(late.state) - 2
		keep := late.keep
		late.mu.Unlock()
		if hasNet && hasPort && stale == 0 {
			if !slices.Contains(keep.Networks, n.ID) || !slices.Contains(keep.Ports, port.ID) {
				t.Fatalf("keep lists %+v", keep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the joining host got network %v, port %v", hasNet, hasPort)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResyncRepushesWhatAPruneRaced: a network created while a resync is
// under way reaches the host before the prune, whose keep list predates
// it, removes it; the resync reads again after pruning and pushes it back.
func TestResyncRepushesWhatAPruneRaced(t *testing.T) {
	e := newEnv(t)
	p := newPlane()
	e.startAgent(t, "a-netnode", p)
	// The racing creation is made by a service nobody listens to, and its
	// push is stood for by writing it into the host's state.
	quietSvc, err := network.New(context.Background(), e.db, network.Config{Policy: policy.New(network.PolicyRules())})
	ok(t, err)
	var racer string
	p.onPrune = func() {
		p.onPrune = nil
		n, err := quietSvc.CreateNetwork(as("p1", "member", "reader"), network.NetworkCreate{Name: "racer"})
		ok(t, err)
		racer = n.ID
		p.mu.Lock()
		p.state["network/"+n.ID] = agentapi.NetworkSpec{ID: n.ID}
		p.mu.Unlock()
	}
	ok(t, e.sync.Resync(context.Background()))
	e.flush(t)
	if racer == "" {
		t.Fatal("the host was not pruned")
	}
	if _, has := p.network(racer); !has || p.count("apply-network "+racer) == 0 {
		t.Fatalf("the network created during the prune is not on the host (calls %v)", p.calls)
	}
}

// TestWirePort: the port's network and security are on its host when
// WirePort returns, without waiting for the queued (debounced) pushes.
func TestWirePort(t *testing.T) {
	e := newEnv(t)
	netPlane, computePlane := newPlane(), newPlane()
	e.startAgent(t, "a-netnode", netPlane)
	e.startAgent(t, "compute-b", computePlane)
	member := as("p1", "member", "reader")
	n, err := e.svc.CreateNetwork(member, network.NetworkCreate{Name: "private"})
	ok(t, err)
	_, err = e.svc.CreateSubnet(member, network.SubnetCreate{NetworkID: n.ID, CIDR: "10.0.0.0/24"})
	ok(t, err)
	p, err := e.svc.CreatePort(member, network.PortCreate{NetworkID: n.ID, DeviceID: "vm-1", DeviceOwner: "compute:nova"})
	ok(t, err)
	_, err = e.svc.UpdatePort(e.admin, p.ID, network.PortUpdate{BindingHostID: ptr("compute-b")})
	ok(t, err)
	if _, found := computePlane.network(n.ID); found {
		t.Fatal("pushed before the debounce: the test proves nothing")
	}
	ok(t, e.sync.WirePort(context.Background(), p.ID))
	if _, found := computePlane.network(n.ID); !found {
		t.Fatal("the bound host has no network after WirePort")
	}
	if ps, found := computePlane.port(p.ID); !found || ps.TapName != dataplane.TapName(p.ID) {
		t.Fatalf("port security after WirePort: %+v, %v", ps, found)
	}
	if err := e.sync.WirePort(context.Background(), "no-such-port"); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("unknown port: %v", err)
	}
}
