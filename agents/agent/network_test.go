package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/agents/netplane"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The real data plane is what production plugs in.
var _ agent.NetworkPlane = (*netplane.Plane)(nil)

// fakePlane is a NetworkPlane that keeps the desired state it was given
// and records every call. A Delete of something it does not hold answers
// NotFound, which the agent must still report as success. fail[id], when
// set, is returned by any call on id.
type fakePlane struct {
	mu       sync.Mutex
	networks map[string]agentapi.NetworkSpec
	routers  map[string]agentapi.RouterSpec
	ports    map[string]agentapi.PortSecuritySpec
	calls    []string
	fail     map[string]error
}

func newFakePlane() *fakePlane {
	return &fakePlane{
		networks: map[string]agentapi.NetworkSpec{},
		routers:  map[string]agentapi.RouterSpec{},
		ports:    map[string]agentapi.PortSecuritySpec{},
		fail:     map[string]error{},
	}
}

func (p *fakePlane) record(call, id string) error {
	p.calls = append(p.calls, call+" "+id)
	return p.fail[id]
}

func (p *fakePlane) ApplyNetwork(_ context.Context, s agentapi.NetworkSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("ApplyNetwork", s.ID); err != nil {
		return err
	}
	p.networks[s.ID] = s
	return nil
}

func (p *fakePlane) DeleteNetwork(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("DeleteNetwork", id); err != nil {
		return err
	}
	if _, ok := p.networks[id]; !ok {
		return fault.NotFoundf("no network %s", id)
	}
	delete(p.networks, id)
	return nil
}

func (p *fakePlane) ApplyRouter(_ context.Context, s agentapi.RouterSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("ApplyRouter", s.ID); err != nil {
		return err
	}
	p.routers[s.ID] = s
	return nil
}

func (p *fakePlane) DeleteRouter(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("DeleteRouter", id); err != nil {
		return err
	}
	if _, ok := p.routers[id]; !ok {
		return fault.NotFoundf("no router %s", id)
	}
	delete(p.routers, id)
	return nil
}

func (p *fakePlane) ApplyPortSecurity(_ context.Context, s agentapi.PortSecuritySpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("ApplyPortSecurity", s.PortID); err != nil {
		return err
	}
	p.ports[s.PortID] = s
	return nil
}

func (p *fakePlane) DeletePortSecurity(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.record("DeletePortSecurity", id); err != nil {
		return err
	}
	if _, ok := p.ports[id]; !ok {
		return fault.NotFoundf("no port %s", id)
	}
	delete(p.ports, id)
	return nil
}

func (p *fakePlane) snapshot() (nets, rtrs, ports int, calls []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.networks), len(p.routers), len(p.ports), append([]string(nil), p.calls...)
}

// netAgent is a running agent with a network plane (agenttest has no
// option for one).
type netAgent struct {
	id, url  string
	agentID  string
	key      []byte
	stateDir string
}

func startNetAgent(t *testing.T, e *env, plane agent.NetworkPlane) *netAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	na := &netAgent{stateDir: t.TempDir()}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	drv := fake.New(fake.Config{})
	cfg := agent.Config{
		ControllerURL: e.srv.URL, JoinToken: e.token(t), Hostname: "netnode", Listener: ln,
		StateDir: na.stateDir, Driver: drv, Network: plane, HeartbeatInterval: time.Hour, Logger: quietLogger(),
		OnReady: func(id, url string) { na.id, na.url = id, url; close(ready) },
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
		done <- err
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready after 10 s")
	}
	// The agent's own credential, to sign hand-made requests.
	b, err := os.ReadFile(filepath.Join(na.stateDir, "credential.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cred struct {
		AgentID string `json:"agent_id"`
		Secret  string `json:"secret"`
	}
	if err := json.Unmarshal(b, &cred); err != nil {
		t.Fatal(err)
	}
	na.agentID = cred.AgentID
	if na.key, err = agentapi.DecodeSecret(cred.Secret); err != nil {
		t.Fatal(err)
	}
	return na
}

// call sends a request to the agent, signed unless sign is false, and
// returns the status and the error body (if any).
func (na *netAgent) call(t *testing.T, sign bool, method, path string, body any) (int, agentapi.Error) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	var rd io.Reader = http.NoBody
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, na.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if sign {
		agentapi.Sign(req, na.agentID, na.key, raw, time.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e agentapi.Error
	if resp.StatusCode >= 300 {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("%s %s: %d with undecodable body: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, e
}

const (
	netID    = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	routerID = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	portID   = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
	otherID  = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
)

func netSpec(id string) agentapi.NetworkSpec {
	return agentapi.NetworkSpec{
		ID: id, Bridge: "brq" + id[:11], MTU: 1450, Type: agentapi.NetworkTypeVXLAN, SegmentationID: 1001,
		VXLANLocalIP: "192.0.2.1", VXLANPeers: []string{"192.0.2.2"},
		DHCPPort:  &agentapi.DHCPPort{ID: otherID, MAC: "fa:16:3e:00:00:01"},
		Subnets:   []agentapi.SubnetSpec{{ID: otherID, CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true, DHCPPortIP: "10.0.0.2"}},
		DHCPHosts: []agentapi.DHCPHost{{MAC: "fa:16:3e:00:00:02", IP: "10.0.0.3", Hostname: "vm1"}},
	}
}

func routerSpec(id string) agentapi.RouterSpec {
	return agentapi.RouterSpec{
		ID:         id,
		Interfaces: []agentapi.RouterInterface{{PortID: otherID, MAC: "fa:16:3e:00:00:03", IPCIDR: "10.0.0.1/24", Bridge: "brq" + netID[:11]}},
		Gateway: &agentapi.RouterGateway{PortID: portID, MAC: "fa:16:3e:00:00:04", IPCIDR: "172.24.4.10/24",
			Bridge: "br-ex", GatewayIP: "172.24.4.1"},
		EnableSNAT:  true,
		FloatingIPs: []agentapi.FloatingIP{{FloatingIP: "172.24.4.11", FixedIP: "10.0.0.3"}},
	}
}

func portSpec(id string) agentapi.PortSecuritySpec {
	zero := 0
	return agentapi.PortSecuritySpec{
		PortID: id, TapName: "tap" + id[:11], MAC: "fa:16:3e:00:00:02", IPs: []string{"10.0.0.3"},
		PortSecurityEnabled: true,
		Rules: []agentapi.SecurityRule{{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp",
			PortRangeMin: &zero, RemoteIPPrefix: "0.0.0.0/0"}},
	}
}

func TestNetworkPlaneThroughClient(t *testing.T) {
	e := newEnv(t)
	plane := newFakePlane()
	na := startNetAgent(t, e, plane)
	c := e.client(t, na.id)
	ctx := context.Background()

	// Applies are idempotent: twice is one network.
	for range 2 {
		if err := c.ApplyNetwork(ctx, netSpec(netID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ApplyRouter(ctx, routerSpec(routerID)); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPortSecurity(ctx, portSpec(portID)); err != nil {
		t.Fatal(err)
	}
	if n, r, p, _ := plane.snapshot(); n != 1 || r != 1 || p != 1 {
		t.Fatalf("plane holds %d networks, %d routers, %d ports", n, r, p)
	}
	// The specs arrive whole.
	plane.mu.Lock()
	gotNet, gotRtr, gotPort := plane.networks[netID], plane.routers[routerID], plane.ports[portID]
	plane.mu.Unlock()
	if gotNet.DHCPPort == nil || gotNet.SegmentationID != 1001 || len(gotNet.DHCPHosts) != 1 || gotNet.Subnets[0].DHCPPortIP != "10.0.0.2" {
		t.Fatalf("network arrived as %+v", gotNet)
	}
	if gotRtr.Gateway == nil || gotRtr.Gateway.GatewayIP != "172.24.4.1" || !gotRtr.EnableSNAT || len(gotRtr.FloatingIPs) != 1 {
		t.Fatalf("router arrived as %+v", gotRtr)
	}
	if len(gotPort.Rules) != 1 || gotPort.Rules[0].PortRangeMin == nil || *gotPort.Rules[0].PortRangeMin != 0 || gotPort.Rules[0].PortRangeMax != nil {
		t.Fatalf("port arrived as %+v", gotPort)
	}

	// Deletes remove; a second delete (the plane says NotFound) succeeds.
	for range 2 {
		if err := c.DeletePortSecurity(ctx, portID); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteRouter(ctx, routerID); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteNetwork(ctx, netID); err != nil {
			t.Fatal(err)
		}
	}
	n, r, p, calls := plane.snapshot()
	if n != 0 || r != 0 || p != 0 {
		t.Fatalf("after deletes the plane holds %d networks, %d routers, %d ports", n, r, p)
	}
	want := []string{
		"ApplyNetwork " + netID, "ApplyNetwork " + netID, "ApplyRouter " + routerID, "ApplyPortSecurity " + portID,
		"DeletePortSecurity " + portID, "DeleteRouter " + routerID, "DeleteNetwork " + netID,
		"DeletePortSecurity " + portID, "DeleteRouter " + routerID, "DeleteNetwork " + netID,
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}

	// The plane's fault kinds cross the wire with their message.
	plane.mu.Lock()
	plane.fail[otherID] = fault.Invalidf("bridge %q is not a valid interface name", "x y")
	plane.fail[routerID] = errors.New("netlink: operation not permitted")
	plane.mu.Unlock()
	if err := c.ApplyNetwork(ctx, netSpec(otherID)); !fault.Is(err, fault.Invalid) || !strings.Contains(fault.Message(err), "not a valid interface name") {
		t.Fatalf("invalid spec: %v (kind %v)", err, fault.KindOf(err))
	}
	if err := c.DeleteRouter(ctx, routerID); !fault.Is(err, fault.Internal) {
		t.Fatalf("plane failure: %v (kind %v)", err, fault.KindOf(err))
	}
}

func TestNetworkRoutesRaw(t *testing.T) {
	e := newEnv(t)
	plane := newFakePlane()
	na := startNetAgent(t, e, plane)

	tests := []struct {
		name       string
		sign       bool
		method     string
		path       string
		body       any
		wantStatus int
		wantKind   string
		wantMsg    string
	}{
		{"apply network", true, "PUT", agentapi.PathNetworks + "/" + netID, netSpec(netID), 204, "", ""},
		{"apply router", true, "PUT", agentapi.PathRouters + "/" + routerID, routerSpec(routerID), 204, "", ""},
		{"apply port", true, "PUT", agentapi.PathPortSecurity + "/" + portID, portSpec(portID), 204, "", ""},
		{"network id mismatch", true, "PUT", agentapi.PathNetworks + "/" + otherID, netSpec(netID), 400, "invalid", "another network"},
		{"router id mismatch", true, "PUT", agentapi.PathRouters + "/" + otherID, routerSpec(routerID), 400, "invalid", "another router"},
		{"port id mismatch", true, "PUT", agentapi.PathPortSecurity + "/" + otherID, portSpec(portID), 400, "invalid", "another port"},
		{"id not a UUID", true, "PUT", agentapi.PathNetworks + "/brq-evil", netSpec(netID), 400, "invalid", "is not a network"},
		{"delete id not a UUID", true, "DELETE", agentapi.PathPortSecurity + "/a.b", nil, 400, "invalid", "is not a network"},
		{"malformed body", true, "PUT", agentapi.PathRouters + "/" + routerID, "{", 400, "invalid", "Malformed JSON"},
		{"empty body", true, "PUT", agentapi.PathRouters + "/" + routerID, nil, 400, "invalid", "empty"},
		{"unsigned apply", false, "PUT", agentapi.PathNetworks + "/" + netID, netSpec(netID), 401, "unauthorized", "signature"},
		{"unsigned delete", false, "DELETE", agentapi.PathRouters + "/" + routerID, nil, 401, "unauthorized", "signature"},
		{"spec without id takes the path's", true, "PUT", agentapi.PathNetworks + "/" + otherID, `{"type":"local"}`, 204, "", ""},
		{"delete router", true, "DELETE", agentapi.PathRouters + "/" + routerID, nil, 204, "", ""},
		{"delete absent router", true, "DELETE", agentapi.PathRouters + "/" + routerID, nil, 204, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, e := na.call(t, tc.sign, tc.method, tc.path, tc.body)
			if status != tc.wantStatus || e.Kind != tc.wantKind || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("got %d %+v, want %d %s %q", status, e, tc.wantStatus, tc.wantKind, tc.wantMsg)
			}
		})
	}
	plane.mu.Lock()
	defer plane.mu.Unlock()
	if s, ok := plane.networks[otherID]; !ok || s.ID != otherID || s.Type != agentapi.NetworkTypeLocal {
		t.Fatalf("network applied without an ID in its spec: %+v, %v", s, ok)
	}
	if _, ok := plane.networks[netID]; !ok || len(plane.networks) != 2 || len(plane.ports) != 1 || len(plane.routers) != 0 {
		t.Fatalf("plane state %d networks %d routers %d ports", len(plane.networks), len(plane.routers), len(plane.ports))
	}
	// Refused requests never reached the plane.
	for _, c := range plane.calls {
		if strings.Contains(c, "brq-evil") || strings.Contains(c, "a.b") {
			t.Fatalf("refused request reached the plane: %s", c)
		}
	}
}

func TestNetworkRoutesWithoutPlane(t *testing.T) {
	e := newEnv(t)
	na := startNetAgent(t, e, nil)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"PUT", agentapi.PathNetworks + "/" + netID, netSpec(netID)},
		{"DELETE", agentapi.PathNetworks + "/" + netID, nil},
		{"PUT", agentapi.PathRouters + "/" + routerID, routerSpec(routerID)},
		{"DELETE", agentapi.PathRouters + "/" + routerID, nil},
		{"PUT", agentapi.PathPortSecurity + "/" + portID, portSpec(portID)},
		{"DELETE", agentapi.PathPortSecurity + "/" + portID, nil},
	} {
		status, e := na.call(t, true, tc.method, tc.path, tc.body)
		if status != http.StatusNotImplemented || e.Kind != "not_implemented" || !strings.Contains(e.Message, "no network data plane") {
			t.Fatalf("%s %s: %d %+v", tc.method, tc.path, status, e)
		}
	}
	// Still signature-checked first.
	if status, _ := na.call(t, false, "PUT", agentapi.PathNetworks+"/"+netID, netSpec(netID)); status != http.StatusUnauthorized {
		t.Fatalf("unsigned call to a plane-less agent: %d", status)
	}
	// And the controller's client sees the kind.
	if err := e.client(t, na.id).ApplyNetwork(context.Background(), netSpec(netID)); !fault.Is(err, fault.NotImplemented) {
		t.Fatalf("client against a plane-less agent: %v (kind %v)", err, fault.KindOf(err))
	}
}
