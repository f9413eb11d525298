package compute_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// testNetworks maps a real network.Service to compute.NetworkPorts, as
// cmd/nimbus's computeNetworks adapter does (duplicated: main is not
// importable). nets is set once the environment's database exists.
type testNetworks struct{ nets *network.Service }

var _ compute.NetworkPorts = (*testNetworks)(nil)

// asService carries the control plane's own credentials, as cmd/nimbus's
// serviceContext.
func asService(ctx context.Context) context.Context {
	return auth.WithCredentials(ctx, &auth.Credentials{UserID: "nimbus", UserName: "nimbus", System: true,
		Roles: []string{"admin", "member", "reader"}})
}

func netInfo(n *network.Network) compute.NetworkInfo {
	return compute.NetworkInfo{ID: n.ID, Name: n.Name, ProjectID: n.ProjectID, Shared: n.Shared, External: n.External, MTU: n.MTU}
}

func (a *testNetworks) ListNetworks(ctx context.Context) ([]compute.NetworkInfo, error) {
	list, _, err := a.nets.ListNetworks(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []compute.NetworkInfo
	for i := range list {
		out = append(out, netInfo(&list[i]))
	}
	return out, nil
}

func (a *testNetworks) GetNetwork(ctx context.Context, id string) (*compute.NetworkInfo, error) {
	n, err := a.nets.GetNetwork(ctx, id)
	if err != nil {
		return nil, err
	}
	i := netInfo(n)
	return &i, nil
}

func (a *testNetworks) GetPort(ctx context.Context, id string) (*compute.PortInfo, error) {
	p, err := a.nets.GetPort(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.info(p), nil
}

func (a *testNetworks) CreatePort(ctx context.Context, req compute.PortRequest) (*compute.PortInfo, error) {
	in := network.PortCreate{NetworkID: req.NetworkID, ProjectID: req.ProjectID, DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner}
	if req.FixedIP != "" {
		in.FixedIPs = []network.FixedIPRequest{{IPAddress: req.FixedIP}}
	}
	p, err := a.nets.CreatePort(ctx, in)
	if err != nil {
		return nil, err
	}
	return a.info(p), nil
}

func (a *testNetworks) BindPort(ctx context.Context, portID, deviceID, owner, hostname string) (*compute.PortInfo, error) {
	p, err := a.nets.UpdatePort(asService(ctx), portID, network.PortUpdate{DeviceID: &deviceID, DeviceOwner: &owner, BindingHostID: &hostname})
	if err != nil {
		return nil, err
	}
	return a.info(p), nil
}

func (a *testNetworks) UnbindPort(ctx context.Context, portID string) error {
	empty := ""
	_, err := a.nets.UpdatePort(asService(ctx), portID, network.PortUpdate{DeviceID: &empty, DeviceOwner: &empty, BindingHostID: &empty})
	return err
}

func (a *testNetworks) DevicePorts(ctx context.Context, deviceID string) ([]compute.PortInfo, error) {
	list, _, err := a.nets.ListPorts(asService(ctx), network.ListOptions{Filters: map[string][]string{"device_id": {deviceID}}})
	if err != nil {
		return nil, err
	}
	var out []compute.PortInfo
	for i := range list {
		out = append(out, *a.info(&list[i]))
	}
	return out, nil
}

func (a *testNetworks) DeletePort(ctx context.Context, portID string) error {
	return a.nets.DeletePort(asService(ctx), portID)
}

func (a *testNetworks) info(p *network.Port) *compute.PortInfo {
	i := &compute.PortInfo{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, DeviceID: p.DeviceID, MAC: p.MACAddress,
		Status: p.Status}
	for _, ip := range p.FixedIPs {
		i.FixedIPs = append(i.FixedIPs, compute.FixedIP{SubnetID: ip.SubnetID, IP: ip.IPAddress})
	}
	sctx := asService(context.Background())
	if n, err := a.nets.GetNetwork(sctx, p.NetworkID); err == nil {
		i.NetworkName, i.MTU = n.Name, n.MTU
	}
	if fips, _, err := a.nets.ListFloatingIPs(sctx, network.ListOptions{Filters: map[string][]string{"port_id": {p.ID}}}); err == nil {
		for _, f := range fips {
			i.FloatingIPs = append(i.FloatingIPs, f.FloatingIPAddress)
		}
	}
	return i
}

func (a *testNetworks) FloatingIPByAddress(ctx context.Context, address string) (*compute.FloatingIPInfo, error) {
	list, _, err := a.nets.ListFloatingIPs(ctx, network.ListOptions{Filters: map[string][]string{"floating_ip_address": {address}}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fault.NotFoundf("Floating IP %s could not be found.", address)
	}
	f := list[0]
	return &compute.FloatingIPInfo{ID: f.ID, Address: f.FloatingIPAddress, PortID: f.PortID, FixedIP: f.FixedIPAddress}, nil
}

func (a *testNetworks) AssociateFloatingIP(ctx context.Context, id, portID, fixedIP string) error {
	_, err := a.nets.UpdateFloatingIP(ctx, id, network.FloatingIPUpdate{SetPort: true, PortID: portID, FixedIPAddress: fixedIP})
	return err
}

func (a *testNetworks) DisassociateFloatingIP(ctx context.Context, id string) error {
	_, err := a.nets.UpdateFloatingIP(ctx, id, network.FloatingIPUpdate{SetPort: true})
	return err
}

// netEnv is a compute environment with a real network service.
type netEnv struct {
	*env
	nets *network.Service
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	adapter := &testNetworks{}
	e := newEnvWith(t, envOptions{sched: func(c *compute.Config) { c.Networks = adapter }})
	ns, err := network.New(context.Background(), e.db, network.Config{Policy: policy.New(network.PolicyRules())})
	if err != nil {
		t.Fatal(err)
	}
	adapter.nets = ns
	return &netEnv{env: e, nets: ns}
}

// network makes a network with one DHCP subnet as u.
func (e *netEnv) network(u user, name, cidr string) *network.Network {
	e.t.Helper()
	n, err := e.nets.CreateNetwork(u.Ctx, network.NetworkCreate{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.nets.CreateSubnet(u.Ctx, network.SubnetCreate{NetworkID: n.ID, CIDR: cidr}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *netEnv) devicePorts(id string) []network.Port {
	e.t.Helper()
	list, _, err := e.nets.ListPorts(asService(context.Background()), network.ListOptions{Filters: map[string][]string{"device_id": {id}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *netEnv) bootNets(u user, name string, nets any, headers ...string) *resp {
	e.t.Helper()
	if len(headers) == 0 {
		headers = microversion("2.37")
	}
	return e.do("POST", "/servers", u.Token, map[string]any{"server": map[string]any{
		"name": name, "imageRef": e.image, "flavorRef": "1", "networks": nets}}, headers...)
}

func TestBootWithNetworkAndPort(t *testing.T) {
	e := newNetEnv(t)
	a := e.agent("node1", 8, 16384, 200)
	n := e.network(e.alice, "private", "10.0.0.0/24")

	// {uuid}: compute creates, binds and plugs a port.
	id := e.bootNets(e.alice, "vm1", []any{map[string]any{"uuid": n.ID}}).want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id, "ACTIVE")
	ports := e.devicePorts(id)
	if len(ports) != 1 {
		t.Fatalf("ports of %s: %+v", id, ports)
	}
	p := ports[0]
	if p.DeviceOwner != "compute:nova" || p.BindingHostID != "node1" || p.ProjectID != e.alice.ProjectID {
		t.Fatalf("port %+v", p)
	}
	spec, ok := a.Fake.Spec(id)
	if !ok || len(spec.NICs) != 1 {
		t.Fatalf("spec NICs %+v", spec.NICs)
	}
	nic := spec.NICs[0]
	if nic.PortID != p.ID || nic.MAC != p.MACAddress || nic.Bridge != "brq"+n.ID[:11] || nic.TapName != "tap"+p.ID[:11] || nic.MTU != n.MTU {
		t.Fatalf("nic %+v, port %+v, network mtu %d", nic, p, n.MTU)
	}
	ip := p.FixedIPs[0].IPAddress
	srv := e.do("GET", "/servers/"+id, e.alice.Token, nil).want(http.StatusOK).obj("server")
	addrs, _ := srv["addresses"].(map[string]any)["private"].([]any)
	if len(addrs) != 1 {
		t.Fatalf("addresses %v", srv["addresses"])
	}
	ad := addrs[0].(map[string]any)
	if ad["addr"] != ip || ad["version"] != float64(4) || ad["OS-EXT-IPS:type"] != "fixed" || ad["OS-EXT-IPS-MAC:mac_addr"] != p.MACAddress {
		t.Fatalf("address %v", ad)
	}
	ips := e.do("GET", "/servers/"+id+"/ips", e.alice.Token, nil).want(http.StatusOK).obj("addresses")
	if l, _ := ips["private"].([]any); len(l) != 1 || l[0].(map[string]any)["addr"] != ip {
		t.Fatalf("ips %v", ips)
	}

	// {port}: a pre-created port is bound to the server.
	pre, err := e.nets.CreatePort(e.alice.Ctx, network.PortCreate{NetworkID: n.ID, Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	id2 := e.bootNets(e.alice, "vm2", []any{map[string]any{"port": pre.ID}}).want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id2, "ACTIVE")
	got, err := e.nets.GetPort(e.alice.Ctx, pre.ID)
	if err != nil || got.DeviceID != id2 || got.DeviceOwner != "compute:nova" {
		t.Fatalf("pre-created port %+v %v", got, err)
	}
	if spec, _ := a.Fake.Spec(id2); len(spec.NICs) != 1 || spec.NICs[0].MAC != pre.MACAddress {
		t.Fatalf("spec NICs %+v", spec.NICs)
	}
	// The port is in use now.
	e.bootNets(e.alice, "vm3", []any{map[string]any{"port": pre.ID}}).want(http.StatusConflict)

	// Deleting the servers deletes the created port and only unbinds the
	// pre-created one.
	e.do("DELETE", "/servers/"+id, e.alice.Token, nil).want(http.StatusNoContent)
	e.do("DELETE", "/servers/"+id2, e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, id)
	e.waitGone(e.alice, id2)
	if _, err := e.nets.GetPort(e.alice.Ctx, p.ID); !fault.Is(err, fault.NotFound) {
		t.Fatalf("created port survives its server: %v", err)
	}
	got, err = e.nets.GetPort(e.alice.Ctx, pre.ID)
	if err != nil || got.DeviceID != "" || got.DeviceOwner != "" || got.BindingHostID != "" {
		t.Fatalf("pre-created port after delete %+v %v", got, err)
	}
}

func TestBootAutoNetwork(t *testing.T) {
	e := newNetEnv(t)
	a := e.agent("node1", 8, 16384, 200)

	r := e.bootNets(e.alice, "none", "auto").want(http.StatusBadRequest)
	if !strings.Contains(r.faultMsg(), "Unable to automatically allocate a network") {
		t.Fatalf("message %q", r.faultMsg())
	}
	// Before 2.37 a request without networks, in a project with none, boots
	// without NICs, as Nova's legacy behaviour does.
	legacy := e.boot(e.alice, "legacy", "1", nil)
	e.waitStatus(e.alice, legacy, "ACTIVE")
	if spec, _ := a.Fake.Spec(legacy); len(spec.NICs) != 0 {
		t.Fatalf("legacy boot without networks has NICs %+v", spec.NICs)
	}
	n := e.network(e.alice, "only", "10.1.0.0/24")
	// Before 2.37 a missing networks is auto.
	id := e.boot(e.alice, "auto", "1", nil)
	e.waitStatus(e.alice, id, "ACTIVE")
	spec, _ := a.Fake.Spec(id)
	if len(spec.NICs) != 1 || spec.NICs[0].Bridge != "brq"+n.ID[:11] {
		t.Fatalf("spec NICs %+v", spec.NICs)
	}
	// "none" attaches nothing.
	id = e.bootNets(e.alice, "nonet", "none").want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id, "ACTIVE")
	if spec, _ := a.Fake.Spec(id); len(spec.NICs) != 0 {
		t.Fatalf("none has NICs %+v", spec.NICs)
	}

	e.network(e.alice, "second", "10.2.0.0/24")
	r = e.bootNets(e.alice, "two", "auto").want(http.StatusConflict)
	if r.faultMsg() != "Multiple possible networks found, use a Network ID to be more specific." {
		t.Fatalf("message %q", r.faultMsg())
	}
}

func TestBootNetworkValidation(t *testing.T) {
	e := newNetEnv(t)
	e.agent("node1", 8, 16384, 200)
	r := e.bootNets(e.alice, "x", []any{map[string]any{"uuid": "5f0c1c3e-0000-4000-8000-000000000001"}}).want(http.StatusBadRequest)
	if r.faultMsg() != "Network 5f0c1c3e-0000-4000-8000-000000000001 could not be found." {
		t.Fatalf("message %q", r.faultMsg())
	}
	r = e.bootNets(e.alice, "x", []any{map[string]any{"port": "5f0c1c3e-0000-4000-8000-000000000002"}}).want(http.StatusBadRequest)
	if r.faultMsg() != "Port 5f0c1c3e-0000-4000-8000-000000000002 could not be found." {
		t.Fatalf("message %q", r.faultMsg())
	}
	// Another project's port is as missing.
	bn := e.network(e.bob, "bobnet", "10.9.0.0/24")
	bp, err := e.nets.CreatePort(e.bob.Ctx, network.PortCreate{NetworkID: bn.ID})
	if err != nil {
		t.Fatal(err)
	}
	r = e.bootNets(e.alice, "x", []any{map[string]any{"port": bp.ID}}).want(http.StatusBadRequest)
	if r.faultMsg() != "Port "+bp.ID+" could not be found." {
		t.Fatalf("message %q", r.faultMsg())
	}
	// Bob's private network is unknown to alice too.
	e.bootNets(e.alice, "x", []any{map[string]any{"uuid": bn.ID}}).want(http.StatusBadRequest)
	// 2.37 requires networks.
	e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
		"name": "x", "imageRef": e.image, "flavorRef": "1"}}, microversion("2.37")...).want(http.StatusBadRequest)
}

func TestBootWithoutNetworking(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
		"name": "x", "imageRef": e.image, "flavorRef": "1",
		"networks": []any{map[string]any{"uuid": "5f0c1c3e-0000-4000-8000-000000000001"}}}}, microversion("2.37")...).want(http.StatusBadRequest)
	if r.faultMsg() != "Networking is not available" {
		t.Fatalf("message %q", r.faultMsg())
	}
}

// TestSpawnFailureDeletesPorts: a failed spawn deletes the ports the build
// created.
func TestSpawnFailureDeletesPorts(t *testing.T) {
	e := newNetEnv(t)
	tok, err := e.reg.CreateJoinToken(e.admin.Ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Hostname: "node1", Fake: fake.Config{
		Hook: func(ctx context.Context, op, uuid string) error {
			if op == "spawn" {
				return errors.New("boom")
			}
			return nil
		}}})
	t.Cleanup(e.transport.CloseIdleConnections)
	e.svc.Scheduler().Invalidate()
	n := e.network(e.alice, "private", "10.0.0.0/24")
	id := e.bootNets(e.alice, "doomed", []any{map[string]any{"uuid": n.ID}}).want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id, "ERROR")
	eventually(t, 10*time.Second, func() bool { return len(e.devicePorts(id)) == 0 }, "ports of %s to be deleted", id)
	list, _, err := e.nets.ListPorts(asService(context.Background()), network.ListOptions{Filters: map[string][]string{"network_id": {n.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.DeviceOwner != network.OwnerDHCP {
			t.Fatalf("port left behind: %+v", p)
		}
	}
}

// TestBootFixedIPConfigDrive: {uuid, fixed_ip} gets that address, and the
// config drive's network_data.json describes the NIC for DHCP.
func TestBootFixedIPConfigDrive(t *testing.T) {
	e := newNetEnv(t)
	a := e.agent("node1", 8, 16384, 200)
	n := e.network(e.alice, "private", "10.0.0.0/24")
	id := e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
		"name": "fixed", "imageRef": e.image, "flavorRef": "1", "config_drive": true,
		"security_groups": []any{map[string]any{"name": "default"}},
		"networks":        []any{map[string]any{"uuid": n.ID, "fixed_ip": "10.0.0.50"}}}},
		microversion("2.37")...).want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id, "ACTIVE")
	ports := e.devicePorts(id)
	if len(ports) != 1 || ports[0].FixedIPs[0].IPAddress != "10.0.0.50" {
		t.Fatalf("ports %+v", ports)
	}
	spec, _ := a.Fake.Spec(id)
	if spec.ConfigDrive == nil {
		t.Fatal("no config drive")
	}
	nd := string(spec.ConfigDrive.Files["openstack/latest/network_data.json"])
	if !strings.Contains(nd, ports[0].MACAddress) || !strings.Contains(nd, `"ipv4_dhcp"`) || !strings.Contains(nd, "tap"+ports[0].ID[:11]) {
		t.Fatalf("network_data.json %s", nd)
	}
	// Several servers cannot share one fixed IP.
	e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{
		"name": "fixed", "imageRef": e.image, "flavorRef": "1", "max_count": 2,
		"networks": []any{map[string]any{"uuid": n.ID, "fixed_ip": "10.0.0.51"}}}},
		microversion("2.37")...).want(http.StatusBadRequest)
}
