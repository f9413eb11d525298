package compute_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/agenttest"
	"github.com/nimbus-cloud/nimbus/agents/fake"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// nicPorts lists the port IDs of an instance's NICs on the fake host.
func nicPorts(a *agenttest.Agent, id string) []string {
	spec, _ := a.Fake.Spec(id)
	var out []string
	for _, n := range spec.NICs {
		out = append(out, n.PortID)
	}
	return out
}

// actionNames lists a server's instance actions, newest first.
func (e *netEnv) actionNames(u user, id string) []string {
	e.t.Helper()
	var out []string
	for _, a := range e.do("GET", "/servers/"+id+"/os-instance-actions", u.Token, nil).want(http.StatusOK).list("instanceActions") {
		out = append(out, a["action"].(string))
	}
	return out
}

func TestInterfaceAttachDetach(t *testing.T) {
	e := newNetEnv(t)
	a := e.agent("node1", 8, 16384, 200)
	private := e.network(e.alice, "private", "10.0.0.0/24")
	second := e.network(e.alice, "second", "10.1.0.0/24")
	id := e.bootNets(e.alice, "vm", []any{map[string]any{"uuid": private.ID}}).want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, id, "ACTIVE")
	bootPort := e.devicePorts(id)[0]
	pre, err := e.nets.CreatePort(e.alice.Ctx, network.PortCreate{NetworkID: private.ID, Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/servers/" + id + "/os-interface"

	// By net_id with an address: compute creates the port.
	att := e.do("POST", path, e.alice.Token, map[string]any{"interfaceAttachment": map[string]any{
		"net_id": second.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.1.0.50"}}}},
		microversion("2.70")...).want(http.StatusOK).obj("interfaceAttachment")
	created := att["port_id"].(string)
	ips, _ := att["fixed_ips"].([]any)
	if att["net_id"] != second.ID || len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "10.1.0.50" ||
		ips[0].(map[string]any)["subnet_id"] == "" || att["mac_addr"] == "" || att["port_state"] == nil {
		t.Fatalf("attachment %v", att)
	}
	if v, ok := att["tag"]; !ok || v != nil {
		t.Fatalf("2.70 attachment without a null tag: %v", att)
	}
	p, err := e.nets.GetPort(e.alice.Ctx, created)
	if err != nil || p.DeviceID != id || p.DeviceOwner != "compute:nova" || p.BindingHostID != "node1" || p.ProjectID != e.alice.ProjectID {
		t.Fatalf("created port %+v %v", p, err)
	}
	spec, _ := a.Fake.Spec(id)
	if len(spec.NICs) != 2 || spec.NICs[1] != (agentapi.NIC{PortID: created, MAC: p.MACAddress, Bridge: "brq" + second.ID[:11],
		TapName: "tap" + created[:11], MTU: second.MTU}) {
		t.Fatalf("NICs on the host %+v", spec.NICs)
	}

	// By port_id: the user's port is bound.
	att = e.do("POST", path, e.alice.Token, map[string]any{"interfaceAttachment": map[string]any{"port_id": pre.ID}}).
		want(http.StatusOK).obj("interfaceAttachment")
	if att["port_id"] != pre.ID || att["mac_addr"] != pre.MACAddress {
		t.Fatalf("attachment %v", att)
	}
	if _, ok := att["tag"]; ok {
		t.Fatalf("tag before 2.70: %v", att)
	}
	if got := nicPorts(a, id); !slices.Equal(got, []string{bootPort.ID, created, pre.ID}) {
		t.Fatalf("NICs on the host %v", got)
	}

	list := e.do("GET", path, e.alice.Token, nil).want(http.StatusOK).list("interfaceAttachments")
	var listed []string
	for _, l := range list {
		listed = append(listed, l["port_id"].(string))
	}
	slices.Sort(listed)
	want := []string{bootPort.ID, created, pre.ID}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("os-interface lists %v, want %v", listed, want)
	}
	if sh := e.do("GET", path+"/"+pre.ID, e.alice.Token, nil).want(http.StatusOK).obj("interfaceAttachment"); sh["net_id"] != private.ID {
		t.Fatalf("show %v", sh)
	}
	addrs := e.do("GET", "/servers/"+id, e.alice.Token, nil).want(http.StatusOK).obj("server")["addresses"].(map[string]any)
	if l, _ := addrs["second"].([]any); len(l) != 1 || l[0].(map[string]any)["addr"] != "10.1.0.50" {
		t.Fatalf("addresses %v", addrs)
	}
	if l, _ := addrs["private"].([]any); len(l) != 2 {
		t.Fatalf("addresses %v", addrs)
	}

	// Detaching deletes the port compute created and only unbinds the
	// user's.
	e.do("DELETE", path+"/"+created, e.alice.Token, nil).want(http.StatusAccepted)
	eventually(t, 10*time.Second, func() bool {
		_, err := e.nets.GetPort(e.alice.Ctx, created)
		return fault.Is(err, fault.NotFound)
	}, "port %s to be deleted", created)
	e.do("DELETE", path+"/"+pre.ID, e.alice.Token, nil).want(http.StatusAccepted)
	eventually(t, 10*time.Second, func() bool {
		got, err := e.nets.GetPort(e.alice.Ctx, pre.ID)
		return err == nil && got.DeviceID == "" && got.DeviceOwner == "" && got.BindingHostID == ""
	}, "port %s to be unbound", pre.ID)
	if got := nicPorts(a, id); !slices.Equal(got, []string{bootPort.ID}) {
		t.Fatalf("NICs on the host after detaching %v", got)
	}
	if l := e.do("GET", path, e.alice.Token, nil).want(http.StatusOK).list("interfaceAttachments"); len(l) != 1 {
		t.Fatalf("os-interface after detaching %v", l)
	}
	eventually(t, 10*time.Second, func() bool {
		return slices.Equal(e.actionNames(e.alice, id)[:4], []string{"detach_interface", "detach_interface", "attach_interface", "attach_interface"})
	}, "the instance actions of %s", id)

	// A stopped server takes an interface too (in its definition), and a
	// server booted without networks gets its first this way.
	e.do("POST", "/servers/"+id+"/action", e.alice.Token, map[string]any{"os-stop": nil}).want(http.StatusAccepted)
	e.waitStatus(e.alice, id, "SHUTOFF")
	e.do("POST", path, e.alice.Token, map[string]any{"interfaceAttachment": map[string]any{"net_id": second.ID}}).want(http.StatusOK)
	if got := nicPorts(a, id); len(got) != 2 {
		t.Fatalf("NICs of the stopped server %v", got)
	}
	bare := e.bootNets(e.alice, "bare", "none").want(http.StatusAccepted).obj("server")["id"].(string)
	e.waitStatus(e.alice, bare, "ACTIVE")
	att = e.do("POST", "/servers/"+bare+"/os-interface", e.alice.Token, map[string]any{"interfaceAttachment": map[string]any{"net_id": private.ID}}).
		want(http.StatusOK).obj("interfaceAttachment")
	if got := nicPorts(a, bare); !slices.Equal(got, []string{att["port_id"].(string)}) {
		t.Fatalf("NICs of the server booted without networks %v", got)
	}
	addrs = e.do("GET", "/servers/"+bare, e.alice.Token, nil).want(http.StatusOK).obj("server")["addresses"].(map[string]any)
	if l, _ := addrs["private"].([]any); len(l) != 1 {
		t.Fatalf("addresses of the server booted without networks %v", addrs)
	}
	// Deleting the server deletes the attached port it created.
	e.do("DELETE", "/servers/"+bare, e.alice.Token, nil).want(http.StatusNoContent)
	e.waitGone(e.alice, bare)
	eventually(t, 10*time.Second, func() bool { return len(e.devicePorts(bare)) == 0 }, "ports of %s to go", bare)
}

func TestInterfaceRejections(t *testing.T) {
	e := newNetEnv(t)
	tok, err := e.reg.CreateJoinToken(e.admin.Ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var hold, failAttach atomic.Bool
	// Closing release lets every held spawn go on: vm's neighbours and bob's
	// server are all spawned while hold is set.
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	a := agenttest.Start(t, e.srv.URL, tok, agenttest.Options{Hostname: "node1", Fake: fake.Config{
		Inventory: agentapi.Inventory{VCPUs: 2, MemoryMB: 2048, DiskGB: 30, HypervisorType: "QEMU", HypervisorVersion: 8002000,
			VirtType: "kvm", CPUInfo: `{"arch": "x86_64"}`, HostIP: "127.0.0.1"},
		Hook: func(ctx context.Context, op, _ string) error {
			if op == agentapi.ActionAttachInterface && failAttach.Load() {
				return errors.New("boom")
			}
			if op == "spawn" && hold.Load() {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		}}})
	t.Cleanup(e.transport.CloseIdleConnections)
	t.Cleanup(releaseAll)
	e.svc.Scheduler().Invalidate()

	private := e.network(e.alice, "private", "10.0.0.0/24")
	e.network(e.alice, "second", "10.1.0.0/24")
	bootOn := func(name, flavor string) string {
		return e.do("POST", "/servers", e.alice.Token, map[string]any{"server": map[string]any{"name": name, "imageRef": e.image,
			"flavorRef": flavor, "networks": []any{map[string]any{"uuid": private.ID}}}}, microversion("2.37")...).
			want(http.StatusAccepted).obj("server")["id"].(string)
	}
	vm := bootOn("vm", "1")
	e.waitStatus(e.alice, vm, "ACTIVE")
	inUse := e.devicePorts(vm)[0].ID
	// Too big for the host: ERROR.
	broken := bootOn("broken", "3")
	e.waitStatus(e.alice, broken, "ERROR")
	hold.Store(true)
	building := bootOn("building", "1")
	locked := bootOn("locked", "1")
	eventually(t, 10*time.Second, func() bool {
		s, err := e.svc.GetServer(e.alice.Ctx, building)
		return err == nil && s.HostID != ""
	}, "server %s to reach its host", building)

	bn := e.network(e.bob, "bobnet", "10.9.0.0/24")
	bobPort, err := e.nets.CreatePort(e.bob.Ctx, network.PortCreate{NetworkID: bn.ID})
	if err != nil {
		t.Fatal(err)
	}
	bobVM := e.do("POST", "/servers", e.bob.Token, map[string]any{"server": map[string]any{"name": "b", "imageRef": e.image,
		"flavorRef": "1", "networks": "none"}}, microversion("2.37")...).want(http.StatusAccepted).obj("server")["id"].(string)
	free, err := e.nets.CreatePort(e.alice.Ctx, network.PortCreate{NetworkID: private.ID})
	if err != nil {
		t.Fatal(err)
	}
	const missing = "5f0c1c3e-0000-4000-8000-00000000000f"
	attach := func(body map[string]any) any { return map[string]any{"interfaceAttachment": body} }

	cases := []struct {
		name   string
		method string
		server string
		port   string // DELETE and GET of one interface
		body   any
		status int
		msg    string
	}{
		{"unknown server", "POST", missing, "", attach(map[string]any{"net_id": private.ID}), 404, "Instance " + missing + " could not be found."},
		{"another project's server", "POST", bobVM, "", attach(map[string]any{"net_id": private.ID}), 404, ""},
		{"unknown port", "POST", vm, "", attach(map[string]any{"port_id": missing}), 404, "Port " + missing + " could not be found."},
		{"another project's port", "POST", vm, "", attach(map[string]any{"port_id": bobPort.ID}), 404, ""},
		{"unknown network", "POST", vm, "", attach(map[string]any{"net_id": missing}), 404, "Network " + missing + " could not be found."},
		{"another project's network", "POST", vm, "", attach(map[string]any{"net_id": bn.ID}), 404, ""},
		{"port in use", "POST", vm, "", attach(map[string]any{"port_id": inUse}), 409, "Port " + inUse + " is still in use."},
		{"both network and port", "POST", vm, "", attach(map[string]any{"net_id": private.ID, "port_id": free.ID}), 400, "Must not input both network_id and port_id"},
		{"address without network", "POST", vm, "", attach(map[string]any{"port_id": free.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}), 400, "Must input network_id when request IP address"},
		{"two addresses", "POST", vm, "", attach(map[string]any{"net_id": private.ID, "fixed_ips": []any{
			map[string]any{"ip_address": "10.0.0.9"}, map[string]any{"ip_address": "10.0.0.10"}}}), 400, ""},
		{"not an address", "POST", vm, "", attach(map[string]any{"net_id": private.ID, "fixed_ips": []any{map[string]any{"ip_address": "ten"}}}), 400, ""},
		{"not an object", "POST", vm, "", map[string]any{"interfaceAttachment": "x"}, 400, ""},
		{"several networks to choose from", "POST", vm, "", map[string]any{}, 400, "Multiple possible networks found, use a Network ID to be more specific."},
		{"building", "POST", building, "", attach(map[string]any{"net_id": private.ID}), 409, "Cannot 'attach_interface' instance " + building + " while it is in vm_state building"},
		{"error", "POST", broken, "", attach(map[string]any{"net_id": private.ID}), 409, "Cannot 'attach_interface' instance " + broken + " while it is in vm_state error"},
		{"detach while building", "DELETE", building, free.ID, nil, 409, ""},
		{"detach a port the server lacks", "DELETE", vm, free.ID, nil, 404, "Port " + free.ID + " is not attached"},
		{"detach from an unknown server", "DELETE", missing, free.ID, nil, 404, ""},
		{"show a port the server lacks", "GET", vm, free.ID, nil, 404, ""},
		{"list another project's server", "GET", bobVM, "", nil, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/servers/" + c.server + "/os-interface"
			if c.port != "" {
				path += "/" + c.port
			}
			r := e.do(c.method, path, e.alice.Token, c.body)
			r.t = t
			r.want(c.status)
			if c.msg != "" && r.faultMsg() != c.msg {
				t.Fatalf("message %q, want %q", r.faultMsg(), c.msg)
			}
		})
	}
	// Nothing was plugged, and no port was left behind.
	if got := nicPorts(a, vm); !slices.Equal(got, []string{inUse}) {
		t.Fatalf("NICs of %s after the rejections: %v", vm, got)
	}
	if got, err := e.nets.GetPort(e.alice.Ctx, free.ID); err != nil || got.DeviceID != "" {
		t.Fatalf("free port after the rejections %+v %v", got, err)
	}
	list, _, err := e.nets.ListPorts(e.alice.Ctx, network.ListOptions{Filters: map[string][]string{"network_id": {private.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]int{}
	for _, p := range list {
		if p.DeviceOwner != network.OwnerDHCP {
			owners[p.DeviceID]++
		}
	}
	if len(owners) != 4 || owners[""] != 1 || owners[vm] != 1 || owners[building] != 1 || owners[locked] != 1 {
		t.Fatalf("ports on the network by device after the rejections: %v", owners)
	}

	// A server an admin locked refuses its owner.
	hold.Store(false)
	releaseAll()
	e.waitStatus(e.alice, locked, "ACTIVE")
	e.do("POST", "/servers/"+locked+"/action", e.admin.Token, map[string]any{"lock": nil}).want(http.StatusAccepted)
	r := e.do("POST", "/servers/"+locked+"/os-interface", e.alice.Token, attach(map[string]any{"net_id": private.ID})).want(http.StatusConflict)
	if r.faultMsg() != "Instance "+locked+" is locked" {
		t.Fatalf("message %q", r.faultMsg())
	}
	lockedPort := e.devicePorts(locked)[0].ID
	e.do("DELETE", "/servers/"+locked+"/os-interface/"+lockedPort, e.alice.Token, nil).want(http.StatusConflict)

	// A host that fails to plug the NIC: 500 (Nova's InterfaceAttachFailed,
	// whose text the fault table keeps from users like every internal
	// error), the port compute made for it is gone, and the action records
	// the error.
	failAttach.Store(true)
	e.do("POST", "/servers/"+vm+"/os-interface", e.alice.Token, attach(map[string]any{"net_id": private.ID})).want(http.StatusInternalServerError)
	if ports := e.devicePorts(vm); len(ports) != 1 || ports[0].ID != inUse {
		t.Fatalf("ports of %s after a failed attach: %+v", vm, ports)
	}
	if got := nicPorts(a, vm); !slices.Equal(got, []string{inUse}) {
		t.Fatalf("NICs of %s after a failed attach: %v", vm, got)
	}
	act := e.do("GET", "/servers/"+vm+"/os-instance-actions", e.alice.Token, nil).want(http.StatusOK).list("instanceActions")[0]
	if act["action"] != "attach_interface" || act["message"] != "Error" {
		t.Fatalf("action of the failed attach %v", act)
	}
}

func TestFloatingIpActions(t *testing.T) {
	e := newNetEnv(t)
	e.agent("node1", 8, 16384, 200)
	yes, no := true, false
	public, err := e.nets.CreateNetwork(e.admin.Ctx, network.NetworkCreate{Name: "public", External: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.CreateSubnet(e.admin.Ctx, network.SubnetCreate{NetworkID: public.ID, CIDR: "172.24.4.0/24", EnableDHCP: &no}); err != nil {
		t.Fatal(err)
	}
	private, err := e.nets.CreateNetwork(e.alice.Ctx, network.NetworkCreate{Name: "private"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := e.nets.CreateSubnet(e.alice.Ctx, network.SubnetCreate{NetworkID: private.ID, CIDR: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := e.nets.CreateRouter(e.alice.Ctx, network.RouterCreate{Name: "r", Gateway: &network.GatewayRequest{NetworkID: public.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.nets.AddRouterInterface(e.alice.Ctx, rt.ID, sn.ID, ""); err != nil {
		t.Fatal(err)
	}
	fip, err := e.nets.CreateFloatingIP(e.alice.Ctx, network.FloatingIPCreate{FloatingNetworkID: public.ID})
	if err != nil {
		t.Fatal(err)
	}
	bobFip, err := e.nets.CreateFloatingIP(e.bob.Ctx, network.FloatingIPCreate{FloatingNetworkID: public.ID})
	if err != nil {
		t.Fatal(err)
	}
	boot := func(name string, nets any) string {
		id := e.bootNets(e.alice, name, nets).want(http.StatusAccepted).obj("server")["id"].(string)
		e.waitStatus(e.alice, id, "ACTIVE")
		return id
	}
	vm := boot("vm", []any{map[string]any{"uuid": private.ID}})
	other := boot("other", []any{map[string]any{"uuid": private.ID}})
	bare := boot("bare", "none")
	port := e.devicePorts(vm)[0]
	action := func(id, name string, body map[string]any, headers ...string) *resp {
		return e.do("POST", "/servers/"+id+"/action", e.alice.Token, map[string]any{name: body}, headers...)
	}
	addr := fip.FloatingIPAddress

	// Associated: the floating IP points at the server's port and shows in
	// its addresses.
	action(vm, "addFloatingIp", map[string]any{"address": addr}, microversion("2.43")...).want(http.StatusAccepted)
	got, err := e.nets.GetFloatingIP(e.alice.Ctx, fip.ID)
	if err != nil || got.PortID != port.ID || got.FixedIPAddress != port.FixedIPs[0].IPAddress {
		t.Fatalf("floating IP after addFloatingIp %+v %v", got, err)
	}
	addrs := e.do("GET", "/servers/"+vm, e.alice.Token, nil).want(http.StatusOK).obj("server")["addresses"].(map[string]any)
	l, _ := addrs["private"].([]any)
	if len(l) != 2 || l[1].(map[string]any)["addr"] != addr || l[1].(map[string]any)["OS-EXT-IPS:type"] != "floating" {
		t.Fatalf("addresses %v", addrs)
	}

	cases := []struct {
		name    string
		server  string
		action  string
		body    map[string]any
		version string
		status  int
		msg     string
	}{
		{"removed in 2.44", vm, "addFloatingIp", map[string]any{"address": addr}, "2.44", 404, ""},
		{"remove removed in 2.44", vm, "removeFloatingIp", map[string]any{"address": addr}, "2.44", 404, ""},
		{"no address", vm, "addFloatingIp", map[string]any{}, "2.1", 400, ""},
		{"not an address", vm, "addFloatingIp", map[string]any{"address": "x"}, "2.1", 400, ""},
		{"unknown address", vm, "addFloatingIp", map[string]any{"address": "172.24.4.250"}, "2.1", 404, "floating IP not found"},
		{"another project's address", vm, "addFloatingIp", map[string]any{"address": bobFip.FloatingIPAddress}, "2.1", 404, "floating IP not found"},
		{"fixed address not the server's", vm, "addFloatingIp", map[string]any{"address": addr, "fixed_address": "10.0.0.250"}, "2.1", 400,
			"Specified fixed address not assigned to instance"},
		{"server without ports", bare, "addFloatingIp", map[string]any{"address": addr}, "2.1", 400, "No fixed IPs associated to instance"},
		{"unknown server", "5f0c1c3e-0000-4000-8000-00000000000f", "addFloatingIp", map[string]any{"address": addr}, "2.1", 404, ""},
		{"remove from a server it is not on", other, "removeFloatingIp", map[string]any{"address": addr}, "2.1", 409,
			"Floating IP " + addr + " is not associated with instance " + other + "."},
		{"remove an unknown address", vm, "removeFloatingIp", map[string]any{"address": "172.24.4.250"}, "2.1", 404, "floating IP not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := action(c.server, c.action, c.body, microversion(c.version)...)
			r.t = t
			r.want(c.status)
			if c.msg != "" && r.faultMsg() != c.msg {
				t.Fatalf("message %q, want %q", r.faultMsg(), c.msg)
			}
		})
	}
	if got, _ := e.nets.GetFloatingIP(e.alice.Ctx, fip.ID); got.PortID != port.ID {
		t.Fatalf("the rejections moved the floating IP: %+v", got)
	}

	// With fixed_address, and moving from one server to another, as Nova
	// does.
	otherPort := e.devicePorts(other)[0]
	action(other, "addFloatingIp", map[string]any{"address": addr, "fixed_address": otherPort.FixedIPs[0].IPAddress}).want(http.StatusAccepted)
	if got, _ := e.nets.GetFloatingIP(e.alice.Ctx, fip.ID); got.PortID != otherPort.ID {
		t.Fatalf("floating IP after moving %+v", got)
	}
	action(vm, "removeFloatingIp", map[string]any{"address": addr}).want(http.StatusConflict)
	action(other, "removeFloatingIp", map[string]any{"address": addr}).want(http.StatusAccepted)
	if got, _ := e.nets.GetFloatingIP(e.alice.Ctx, fip.ID); got.PortID != "" || got.FixedIPAddress != "" {
		t.Fatalf("floating IP after removeFloatingIp %+v", got)
	}
	action(other, "removeFloatingIp", map[string]any{"address": addr}).want(http.StatusConflict)
}
