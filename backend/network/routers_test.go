package network

import (
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// topology is the classic one: an external network, a private network of
// project p1, a router between them and an instance port.
type topology struct {
	ext, priv     *Network
	extSn, privSn *Subnet
	router        *Router
	port          *Port
}

func (e *env) classic(t *testing.T) *topology {
	t.Helper()
	p1 := member("p1")
	tp := &topology{}
	tp.ext, tp.extSn = e.external(t, "203.0.113.0/24")
	tp.priv, tp.privSn = e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	r, err := e.s.CreateRouter(p1, RouterCreate{Name: "r1", Gateway: &GatewayRequest{NetworkID: tp.ext.ID}})
	ok(t, err)
	_, err = e.s.AddRouterInterface(p1, r.ID, tp.privSn.ID, "")
	ok(t, err)
	tp.router, err = e.s.GetRouter(p1, r.ID)
	ok(t, err)
	tp.port = e.port(t, p1, PortCreate{NetworkID: tp.priv.ID, DeviceID: "vm-1", DeviceOwner: "compute:nova"})
	return tp
}

func TestRouterGatewayAndInterfaces(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	tp := e.classic(t)
	r := tp.router
	if r.Gateway == nil || r.Gateway.NetworkID != tp.ext.ID || !r.Gateway.EnableSNAT || len(r.Gateway.ExternalFixedIPs) != 1 ||
		r.Gateway.ExternalFixedIPs[0].IPAddress != "203.0.113.2" {
		t.Fatalf("router %+v gateway %+v", r, r.Gateway)
	}
	plan, err := e.s.RouterPlan(e.admin, r.ID)
	ok(t, err)
	if plan.Gateway == nil || len(plan.Interfaces) != 1 || plan.Interfaces[0].Port.FixedIPs[0].IPAddress != "10.0.0.1" ||
		plan.Interfaces[0].Port.DeviceOwner != OwnerRouterInterface {
		t.Fatalf("plan %+v", plan)
	}
	iface := plan.Interfaces[0].Port

	// Attaching the same subnet again, or an overlapping one, is refused.
	_, err = e.s.AddRouterInterface(p1, r.ID, tp.privSn.ID, "")
	wantFault(t, err, fault.Invalid, "BadRequest")
	n2 := e.network(t, p1, NetworkCreate{})
	overlap := e.subnet(t, p1, SubnetCreate{NetworkID: n2.ID, CIDR: "10.0.0.0/25"})
	_, err = e.s.AddRouterInterface(p1, r.ID, overlap.ID, "")
	wantFault(t, err, fault.Invalid, "BadRequest")
	noGW := e.subnet(t, p1, SubnetCreate{NetworkID: e.network(t, p1, NetworkCreate{}).ID, CIDR: "10.5.0.0/24", GatewayIP: ptr("")})
	_, err = e.s.AddRouterInterface(p1, r.ID, noGW.ID, "")
	wantFault(t, err, fault.Invalid, "BadRequest")
	_, err = e.s.AddRouterInterface(p1, r.ID, "", "")
	wantFault(t, err, fault.Invalid, "")
	// A port with a device is in use.
	_, err = e.s.AddRouterInterface(p1, r.ID, "", tp.port.ID)
	wantFault(t, err, fault.Conflict, "PortInUse")

	// The interface port cannot be deleted directly, and the router is in use.
	wantFault(t, e.s.DeletePort(p1, iface.ID), fault.Conflict, "ServicePortInUse")
	wantFault(t, e.s.DeletePort(e.admin, iface.ID), fault.Conflict, "ServicePortInUse")
	_, err = e.s.UpdatePort(p1, iface.ID, PortUpdate{DeviceOwner: ptr("")})
	wantFault(t, err, fault.Conflict, "ServicePortInUse")
	_, err = e.s.UpdatePort(p1, iface.ID, PortUpdate{Name: ptr("leg")})
	ok(t, err)
	wantFault(t, e.s.DeleteRouter(p1, r.ID), fault.Conflict, "RouterInUse")
	// The subnet is in use too, and so is the network.
	wantFault(t, e.s.DeleteSubnet(p1, tp.privSn.ID), fault.Conflict, "SubnetInUse")

	// Another project sees no router.
	_, err = e.s.GetRouter(member("p2"), r.ID)
	wantFault(t, err, fault.NotFound, "RouterNotFound")
	_, err = e.s.AddRouterInterface(member("p2"), r.ID, tp.privSn.ID, "")
	wantFault(t, err, fault.NotFound, "RouterNotFound")

	// Attach by port, then detach by port: the port goes.
	n3 := e.network(t, p1, NetworkCreate{})
	sn3 := e.subnet(t, p1, SubnetCreate{NetworkID: n3.ID, CIDR: "10.3.0.0/24"})
	free := e.port(t, p1, PortCreate{NetworkID: n3.ID, FixedIPs: []FixedIPRequest{{IPAddress: "10.3.0.1"}}})
	ri, err := e.s.AddRouterInterface(p1, r.ID, "", free.ID)
	ok(t, err)
	if ri.PortID != free.ID || ri.SubnetID != sn3.ID || ri.NetworkID != n3.ID {
		t.Errorf("interface %+v", ri)
	}
	_, err = e.s.RemoveRouterInterface(p1, r.ID, "", tp.port.ID)
	wantFault(t, err, fault.NotFound, "RouterInterfaceNotFound")
	_, err = e.s.RemoveRouterInterface(p1, r.ID, "", free.ID)
	ok(t, err)
	if _, err := e.s.GetPort(p1, free.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("interface port after removal: %v", err)
	}

	// Detach by subnet; then the router can go, with its gateway port.
	_, err = e.s.RemoveRouterInterface(p1, r.ID, sn3.ID, "")
	wantFault(t, err, fault.NotFound, "RouterInterfaceNotFoundForSubnet")
	_, err = e.s.RemoveRouterInterface(p1, r.ID, tp.privSn.ID, "")
	ok(t, err)
	ok(t, e.s.DeleteRouter(p1, r.ID))
	gws, _, err := e.s.ListPorts(e.admin, ListOptions{Filters: map[string][]string{"device_owner": {OwnerRouterGateway}}})
	ok(t, err)
	if len(gws) != 0 {
		t.Errorf("gateway ports left: %+v", gws)
	}
}

func TestRouterGatewayRules(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	ext, _ := e.external(t, "203.0.113.0/24")
	priv := e.network(t, p1, NetworkCreate{})
	_, err := e.s.CreateRouter(p1, RouterCreate{Gateway: &GatewayRequest{NetworkID: priv.ID}})
	wantFault(t, err, fault.Invalid, "BadRequest")
	_, err = e.s.CreateRouter(p1, RouterCreate{Gateway: &GatewayRequest{NetworkID: ext.ID, EnableSNAT: ptr(false)}})
	wantFault(t, err, fault.Forbidden, "")
	_, err = e.s.CreateRouter(p1, RouterCreate{Gateway: &GatewayRequest{NetworkID: ext.ID,
		ExternalFixedIPs: []FixedIPRequest{{IPAddress: "203.0.113.9"}}}})
	wantFault(t, err, fault.Forbidden, "")
	r, err := e.s.CreateRouter(e.admin, RouterCreate{ProjectID: "p1", Gateway: &GatewayRequest{NetworkID: ext.ID,
		EnableSNAT: ptr(false), ExternalFixedIPs: []FixedIPRequest{{IPAddress: "203.0.113.9"}}}})
	ok(t, err)
	if r.Gateway.EnableSNAT || r.Gateway.ExternalFixedIPs[0].IPAddress != "203.0.113.9" {
		t.Errorf("gateway %+v", r.Gateway)
	}
	// The netadmin persona manages routers in its project.
	na := as("p1", "netadmin")
	u, err := e.s.UpdateRouter(na, r.ID, RouterUpdate{Name: ptr("edge"), SetGateway: true})
	ok(t, err)
	if u.Gateway != nil || u.Name != "edge" {
		t.Errorf("router %+v", u)
	}
	// An external network without subnets has no address for a gateway.
	bare := e.network(t, e.admin, NetworkCreate{External: ptr(true)})
	_, err = e.s.UpdateRouter(p1, r.ID, RouterUpdate{SetGateway: true, Gateway: &GatewayRequest{NetworkID: bare.ID}})
	wantFault(t, err, fault.Invalid, "ExternalIpAddressExhausted")
	// The external network cannot become internal while a router uses it.
	_, err = e.s.UpdateRouter(p1, r.ID, RouterUpdate{SetGateway: true, Gateway: &GatewayRequest{NetworkID: ext.ID}})
	ok(t, err)
	_, err = e.s.UpdateNetwork(e.admin, ext.ID, NetworkUpdate{External: ptr(false)})
	wantFault(t, err, fault.Conflict, "ExternalNetworkInUse")
	wantFault(t, e.s.DeleteNetwork(e.admin, ext.ID), fault.Conflict, "NetworkInUse")
}

func TestRouterRoutes(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	tp := e.classic(t)
	tests := []struct {
		name   string
		routes []Route
		typ    string
	}{
		{"connected", []Route{{"192.168.0.0/16", "10.0.0.50"}}, ""},
		{"not connected", []Route{{"192.168.0.0/16", "10.9.0.50"}}, "InvalidRoutes"},
		{"router's own address", []Route{{"192.168.0.0/16", "10.0.0.1"}}, "InvalidRoutes"},
		{"bad destination", []Route{{"192.168.0.0", "10.0.0.50"}}, "InvalidRoutes"},
		{"mixed versions", []Route{{"2001:db8::/64", "10.0.0.50"}}, "InvalidRoutes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.s.UpdateRouter(p1, tp.router.ID, RouterUpdate{Routes: &tc.routes})
			if tc.typ != "" {
				wantFault(t, err, fault.Invalid, tc.typ)
				return
			}
			ok(t, err)
			if len(r.Routes) != 1 {
				t.Errorf("routes %+v", r.Routes)
			}
		})
	}
	// The interface a route goes through stays.
	_, err := e.s.RemoveRouterInterface(p1, tp.router.ID, tp.privSn.ID, "")
	wantFault(t, err, fault.Conflict, "RouterInterfaceInUseByRoute")
}

func TestFloatingIPs(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	tp := e.classic(t)

	f, err := e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: tp.ext.ID, PortID: tp.port.ID})
	ok(t, err)
	if f.FloatingIPAddress != "203.0.113.3" || f.PortID != tp.port.ID || f.FixedIPAddress != tp.port.FixedIPs[0].IPAddress ||
		f.RouterID != tp.router.ID || f.Status != StatusDown {
		t.Fatalf("floating ip %+v", f)
	}
	// One floating IP per fixed IP.
	_, err = e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: tp.ext.ID, PortID: tp.port.ID})
	wantFault(t, err, fault.Conflict, "FloatingIPPortAlreadyAssociated")
	f2, err := e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: tp.ext.ID})
	ok(t, err)
	_, err = e.s.UpdateFloatingIP(p1, f2.ID, FloatingIPUpdate{SetPort: true, PortID: tp.port.ID})
	wantFault(t, err, fault.Conflict, "FloatingIPPortAlreadyAssociated")

	// A port on a network no router connects to the external network.
	lonely, _ := e.netWithSubnet(t, p1, "10.8.0.0/24", false)
	lp := e.port(t, p1, PortCreate{NetworkID: lonely.ID})
	_, err = e.s.UpdateFloatingIP(p1, f2.ID, FloatingIPUpdate{SetPort: true, PortID: lp.ID})
	wantFault(t, err, fault.NotFound, "ExternalGatewayForFloatingIPNotFound")

	// Not from an internal network, not at a chosen address unless admin.
	_, err = e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: tp.priv.ID})
	wantFault(t, err, fault.Invalid, "BadRequest")
	_, err = e.s.CreateFloatingIP(p1, FloatingIPCreate{FloatingNetworkID: tp.ext.ID, FloatingIPAddress: "203.0.113.77"})
	wantFault(t, err, fault.Forbidden, "")
	fa, err := e.s.CreateFloatingIP(e.admin, FloatingIPCreate{ProjectID: "p1", FloatingNetworkID: tp.ext.ID, FloatingIPAddress: "203.0.113.77"})
	ok(t, err)
	_, err = e.s.CreateFloatingIP(e.admin, FloatingIPCreate{FloatingNetworkID: tp.ext.ID, FloatingIPAddress: "203.0.113.77"})
	wantFault(t, err, fault.Conflict, "IpAddressAlreadyAllocated")
	// Another project's port is not found.
	other, _ := e.netWithSubnet(t, member("p2"), "10.0.0.0/24", false)
	op := e.port(t, member("p2"), PortCreate{NetworkID: other.ID})
	_, err = e.s.UpdateFloatingIP(p1, fa.ID, FloatingIPUpdate{SetPort: true, PortID: op.ID})
	wantFault(t, err, fault.NotFound, "PortNotFound")
	// Nor is another project's floating IP.
	_, err = e.s.GetFloatingIP(member("p2"), f.ID)
	wantFault(t, err, fault.NotFound, "FloatingIPNotFound")

	// The router's interface the floating IP depends on stays.
	_, err = e.s.RemoveRouterInterface(p1, tp.router.ID, tp.privSn.ID, "")
	wantFault(t, err, fault.Conflict, "RouterInterfaceInUseByFloatingIP")
	_, err = e.s.UpdateRouter(p1, tp.router.ID, RouterUpdate{SetGateway: true})
	wantFault(t, err, fault.Conflict, "RouterExternalGatewayInUseByFloatingIp")

	// The data plane sees the mapping.
	plan, err := e.s.RouterPlan(e.admin, tp.router.ID)
	ok(t, err)
	if len(plan.FloatingIPs) != 1 || plan.FloatingIPs[0].FloatingIPAddress != f.FloatingIPAddress {
		t.Errorf("router plan floating IPs %+v", plan.FloatingIPs)
	}

	// Deleting the port disassociates its floating IP; releasing frees the address.
	ok(t, e.s.DeletePort(p1, tp.port.ID))
	got, err := e.s.GetFloatingIP(p1, f.ID)
	ok(t, err)
	if got.PortID != "" || got.RouterID != "" || got.FixedIPAddress != "" {
		t.Errorf("floating ip after port delete %+v", got)
	}
	ok(t, e.s.DeleteFloatingIP(p1, f.ID))
	fips, _, err := e.s.ListFloatingIPs(p1, ListOptions{})
	ok(t, err)
	if len(fips) != 2 {
		t.Errorf("floating IPs left: %d", len(fips))
	}
	// The released address is free again.
	avail, err := e.s.GetNetworkIPAvailability(e.admin, tp.ext.ID)
	ok(t, err)
	if avail.UsedIPs != 3 { // gateway, f2, fa
		t.Errorf("external used %d", avail.UsedIPs)
	}
}
