package hosts_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// memPlane is an agent.NetworkPlane that keeps what it is told. fail[id],
// when set, is what any call on id returns.
type memPlane struct {
	mu    sync.Mutex
	state map[string]any // "network/<id>", "router/<id>", "port/<id>"
	fail  map[string]error
}

func newMemPlane() *memPlane { return &memPlane{state: map[string]any{}, fail: map[string]error{}} }

func (p *memPlane) set(key, id string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fail[id]; err != nil {
		return err
	}
	if v == nil {
		delete(p.state, key+"/"+id)
	} else {
		p.state[key+"/"+id] = v
	}
	return nil
}

func (p *memPlane) get(key string) (any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.state[key]
	return v, ok
}

func (p *memPlane) ApplyNetwork(_ context.Context, s agentapi.NetworkSpec) error {
	return p.set("network", s.ID, s)
}
func (p *memPlane) DeleteNetwork(_ context.Context, id string) error {
	return p.set("network", id, nil)
}
func (p *memPlane) ApplyRouter(_ context.Context, s agentapi.RouterSpec) error {
	return p.set("router", s.ID, s)
}
func (p *memPlane) DeleteRouter(_ context.Context, id string) error { return p.set("router", id, nil) }
func (p *memPlane) ApplyPortSecurity(_ context.Context, s agentapi.PortSecuritySpec) error {
	return p.set("port", s.PortID, s)
}
func (p *memPlane) DeletePortSecurity(_ context.Context, id string) error {
	return p.set("port", id, nil)
}

// startNetAgent runs a real agent with plane as its network data plane
// (nil for none) and returns its host ID.
func startNetAgent(t *testing.T, e *env, hostname string, plane agent.NetworkPlane) string {
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
		StateDir: t.TempDir(), Driver: drv, Network: plane, HeartbeatInterval: time.Hour, Logger: quietLogger(),
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
		done <- err
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready after 10 s")
	}
	return id
}

const (
	netUUID    = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	routerUUID = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	portUUID   = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
)

func TestClientNetworkPlane(t *testing.T) {
	e := newEnv(t)
	plane := newMemPlane()
	id := startNetAgent(t, e, "netnode", plane)
	ctx, _ := requestCtx()
	c, err := e.reg.Client(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	ns := agentapi.NetworkSpec{ID: netUUID, Bridge: "brqaaaaaaaa-aa", Type: agentapi.NetworkTypeVLAN, SegmentationID: 42,
		PhysicalInterface: "eth1", Subnets: []agentapi.SubnetSpec{{ID: portUUID, CIDR: "10.1.0.0/24", EnableDHCP: false}}}
	rs := agentapi.RouterSpec{ID: routerUUID, EnableSNAT: true, Routes: []agentapi.Route{{Destination: "10.9.0.0/16", NextHop: "10.1.0.5"}}}
	ps := agentapi.PortSecuritySpec{PortID: portUUID, TapName: "tapcccccccc-cc", MAC: "fa:16:3e:00:00:09",
		AllowedAddressPairs: []agentapi.AddressPair{{IPAddress: "10.1.0.100/32"}}}
	if err := c.ApplyNetwork(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyRouter(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPortSecurity(ctx, ps); err != nil {
		t.Fatal(err)
	}
	if v, ok := plane.get("network/" + netUUID); !ok || v.(agentapi.NetworkSpec).SegmentationID != 42 || v.(agentapi.NetworkSpec).PhysicalInterface != "eth1" {
		t.Fatalf("network on the host: %+v, %v", v, ok)
	}
	if v, ok := plane.get("router/" + routerUUID); !ok || len(v.(agentapi.RouterSpec).Routes) != 1 {
		t.Fatalf("router on the host: %+v, %v", v, ok)
	}
	if v, ok := plane.get("port/" + portUUID); !ok || v.(agentapi.PortSecuritySpec).AllowedAddressPairs[0].IPAddress != "10.1.0.100/32" {
		t.Fatalf("port on the host: %+v, %v", v, ok)
	}

	// Deletes, twice each: the second finds nothing and still succeeds.
	for range 2 {
		if err := c.DeletePortSecurity(ctx, portUUID); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteRouter(ctx, routerUUID); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteNetwork(ctx, netUUID); err != nil {
			t.Fatal(err)
		}
	}
	plane.mu.Lock()
	left := len(plane.state)
	plane.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d objects left on the host", left)
	}

	// Errors keep their kind (and message) across the wire.
	plane.mu.Lock()
	plane.fail[routerUUID] = fault.Invalidf("Floating IP 300.1.1.1 is not an IPv4 address.")
	plane.fail[portUUID] = errors.New("iptables: exit status 4")
	plane.mu.Unlock()
	errTests := []struct {
		name string
		call func() error
		want fault.Kind
		msg  string
	}{
		{"plane refuses the spec", func() error { return c.ApplyRouter(ctx, rs) }, fault.Invalid, "not an IPv4 address"},
		{"plane fails", func() error { return c.DeletePortSecurity(ctx, portUUID) }, fault.Internal, ""},
		{"ID not a UUID", func() error { return c.DeleteNetwork(ctx, "../instances") }, fault.Invalid, "is not a network"},
		{"network without ID", func() error { return c.ApplyNetwork(ctx, agentapi.NetworkSpec{}) }, fault.Invalid, "needs an ID"},
		{"port without ID", func() error { return c.DeletePortSecurity(ctx, "") }, fault.Invalid, "needs an ID"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !isKind(err, tc.want) || !strings.Contains(fault.Message(err), tc.msg) {
				t.Fatalf("err = %v (kind %v), want kind %v with %q", err, fault.KindOf(err), tc.want, tc.msg)
			}
		})
	}
}

func TestClientNetworkPlaneMissingOrUnreachable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// An agent started without a network plane.
	id := startNetAgent(t, e, "computeonly", nil)
	c, err := e.reg.Client(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyNetwork(ctx, agentapi.NetworkSpec{ID: netUUID}); !isKind(err, fault.NotImplemented) {
		t.Fatalf("agent without a plane: %v (kind %v)", err, fault.KindOf(err))
	}
	if err := c.DeleteRouter(ctx, routerUUID); !isKind(err, fault.NotImplemented) {
		t.Fatalf("agent without a plane, delete: %v (kind %v)", err, fault.KindOf(err))
	}

	// An agent whose credential is out of step refuses the signature:
	// Unavailable, as for every other call.
	id = startNetAgent(t, e, "netnode", newMemPlane())
	if _, err := e.db.Exec(`UPDATE hosts SET secret = ? WHERE id = ?`, "c2VjcmV0", id); err != nil {
		t.Fatal(err)
	}
	if c, err = e.reg.Client(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPortSecurity(ctx, agentapi.PortSecuritySpec{PortID: portUUID}); !isKind(err, fault.Unavailable) {
		t.Fatalf("refused credential: %v (kind %v)", err, fault.KindOf(err))
	}

	// An agent that is gone.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	_, cred := e.join(t, e.token(t), "gone", deadURL)
	if c, err = e.reg.Client(ctx, cred.AgentID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetwork(ctx, netUUID); !isKind(err, fault.Unavailable) {
		t.Fatalf("unreachable agent: %v (kind %v)", err, fault.KindOf(err))
	}
}
