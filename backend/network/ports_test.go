package network

import (
	"net/netip"
	"regexp"
	"sync"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

var macRE = regexp.MustCompile(`^fa:16:3e:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`)

func TestCreatePortDefaults(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID, Name: "vm0"})
	if !macRE.MatchString(p.MACAddress) || p.Status != StatusDown || !p.AdminStateUp || !p.PortSecurityEnabled ||
		len(p.FixedIPs) != 1 || p.FixedIPs[0] != (FixedIP{sn.ID, "10.0.0.3"}) || p.BindingVIFType != VIFTypeUnbound ||
		p.BindingVNICType != VNICNormal || len(p.SecurityGroups) != 1 {
		t.Fatalf("port %+v", p)
	}
	g, err := e.s.GetSecurityGroup(p1, p.SecurityGroups[0])
	ok(t, err)
	if g.Name != "default" || len(g.Rules) != 4 {
		t.Errorf("default group %+v", g)
	}
	// The default group is made once.
	p2 := e.port(t, p1, PortCreate{NetworkID: n.ID})
	if p2.SecurityGroups[0] != g.ID || p2.FixedIPs[0].IPAddress != "10.0.0.4" {
		t.Errorf("second port %+v", p2)
	}
	// Without port security, no group.
	p3 := e.port(t, p1, PortCreate{NetworkID: n.ID, PortSecurityEnabled: ptr(false)})
	if len(p3.SecurityGroups) != 0 {
		t.Errorf("port without port security has groups %v", p3.SecurityGroups)
	}
	// An explicit empty list of addresses gives none.
	p4 := e.port(t, p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{}})
	if len(p4.FixedIPs) != 0 {
		t.Errorf("port asked for no address got %v", p4.FixedIPs)
	}
	// Port on a network without subnets has no address.
	bare := e.network(t, p1, NetworkCreate{})
	if p := e.port(t, p1, PortCreate{NetworkID: bare.ID}); len(p.FixedIPs) != 0 {
		t.Errorf("port on bare network %+v", p)
	}
}

func TestCreatePortRejections(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	other, otherSn := e.netWithSubnet(t, p1, "10.1.0.0/24", false)
	taken := e.port(t, p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.50"}}})
	sg, err := e.s.CreateSecurityGroup(member("p2"), SecurityGroupCreate{Name: "theirs"})
	ok(t, err)
	tests := []struct {
		name string
		ctx  string // "" is p1
		in   PortCreate
		kind fault.Kind
		typ  string
	}{
		{"address in use", "", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.50"}}}, fault.Conflict, "IpAddressAlreadyAllocated"},
		{"address in use by subnet", "", PortCreate{FixedIPs: []FixedIPRequest{{SubnetID: sn.ID, IPAddress: "10.0.0.50"}}}, fault.Conflict, "IpAddressAlreadyAllocated"},
		{"address outside network", "", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.9.0.5"}}}, fault.Invalid, "InvalidIpForNetwork"},
		{"address outside subnet", "", PortCreate{FixedIPs: []FixedIPRequest{{SubnetID: sn.ID, IPAddress: "10.1.0.5"}}}, fault.Invalid, "InvalidIpForSubnet"},
		{"broadcast address", "", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.255"}}}, fault.Invalid, "InvalidIpForSubnet"},
		{"subnet of another network", "", PortCreate{FixedIPs: []FixedIPRequest{{SubnetID: otherSn.ID}}}, fault.Invalid, "InvalidInput"},
		{"bad address", "", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.300"}}}, fault.Invalid, ""},
		{"duplicate address", "", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.60"}, {IPAddress: "10.0.0.60"}}}, fault.Invalid, ""},
		{"mac in use", "", PortCreate{MACAddress: taken.MACAddress}, fault.Conflict, "MacAddressInUse"},
		{"bad mac", "", PortCreate{MACAddress: "01:00:5e:00:00:01"}, fault.Invalid, ""},
		{"other project's group", "", PortCreate{SecurityGroups: []string{sg.ID}}, fault.NotFound, "SecurityGroupNotFound"},
		{"groups without port security", "", PortCreate{PortSecurityEnabled: ptr(false), SecurityGroups: []string{"x"}}, fault.Invalid, ""},
		{"pairs without port security", "", PortCreate{PortSecurityEnabled: ptr(false), SecurityGroups: []string{},
			AllowedAddressPairs: []AddressPair{{IPAddress: "10.0.0.99"}}}, fault.Conflict, "AddressPairAndPortSecurityRequired"},
		{"bad pair", "", PortCreate{AllowedAddressPairs: []AddressPair{{IPAddress: "nope"}}}, fault.Invalid, ""},
		{"binding host as member", "", PortCreate{BindingHostID: "compute1"}, fault.Forbidden, ""},
		{"bad vnic type", "", PortCreate{BindingVNICType: "weird"}, fault.Invalid, ""},
		{"device id with newline", "", PortCreate{DeviceID: "a\nb"}, fault.Invalid, ""},
		{"network of another project", "p2", PortCreate{}, fault.NotFound, "NetworkNotFound"},
		{"network device on foreign shared network", "p2shared", PortCreate{DeviceOwner: OwnerRouterInterface}, fault.Forbidden, ""},
		{"address on foreign shared network", "p2shared", PortCreate{FixedIPs: []FixedIPRequest{{IPAddress: "10.7.0.9"}}}, fault.Forbidden, ""},
	}
	shared, _ := e.netWithSubnet(t, e.admin, "10.7.0.0/24", false)
	_, err = e.s.UpdateNetwork(e.admin, shared.ID, NetworkUpdate{Shared: ptr(true)})
	ok(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := p1
			tc.in.NetworkID = n.ID
			switch tc.ctx {
			case "p2":
				ctx = member("p2")
			case "p2shared":
				ctx = member("p2")
				tc.in.NetworkID = shared.ID
			}
			_, err := e.s.CreatePort(ctx, tc.in)
			wantFault(t, err, tc.kind, tc.typ)
		})
	}
	_ = other
	// A member of another project may plug into a shared network.
	if p := e.port(t, member("p2"), PortCreate{NetworkID: shared.ID}); len(p.FixedIPs) != 1 {
		t.Errorf("port on shared network %+v", p)
	}
}

func TestIPExhaustion(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	// A /29 has 6 usable addresses; the gateway takes one, leaving 5.
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/29", false)
	for i := 0; i < 5; i++ {
		e.port(t, p1, PortCreate{NetworkID: n.ID})
	}
	_, err := e.s.CreatePort(p1, PortCreate{NetworkID: n.ID})
	wantFault(t, err, fault.Conflict, "IpAddressGenerationFailure")
	_, err = e.s.CreatePort(p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{{SubnetID: sn.ID}}})
	wantFault(t, err, fault.Conflict, "IpAddressGenerationFailure")
	// An explicit address outside the pools (the gateway) is still allowed.
	e.port(t, p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{{IPAddress: "10.0.0.1"}}})
	avail, err := e.s.GetNetworkIPAvailability(e.admin, n.ID)
	ok(t, err)
	if avail.TotalIPs.Int64() != 5 || avail.UsedIPs != 6 {
		t.Errorf("availability %+v", avail)
	}
}

// Concurrent port creation on a /29 never hands out an address twice:
// every success has a distinct address, the rest fail with
// IpAddressGenerationFailure.
func TestConcurrentPortsNeverDuplicate(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/29", false)
	const workers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	addrs := map[string]int{}
	var failures []error
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := e.s.CreatePort(p1, PortCreate{NetworkID: n.ID})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
				return
			}
			addrs[p.FixedIPs[0].IPAddress]++
		}()
	}
	wg.Wait()
	if len(addrs) != 5 || len(failures) != workers-5 {
		t.Fatalf("%d addresses %v, %d failures %v", len(addrs), addrs, len(failures), failures)
	}
	for a, k := range addrs {
		if k != 1 {
			t.Errorf("address %s handed out %d times", a, k)
		}
	}
	for _, err := range failures {
		wantFault(t, err, fault.Conflict, "IpAddressGenerationFailure")
	}
}

func TestPortVisibility(t *testing.T) {
	e := newEnv(t)
	p1, p2 := member("p1"), member("p2")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	_, err := e.s.GetPort(p2, p.ID)
	wantFault(t, err, fault.NotFound, "PortNotFound")
	_, err = e.s.UpdatePort(p2, p.ID, PortUpdate{Name: ptr("x")})
	wantFault(t, err, fault.NotFound, "PortNotFound")
	wantFault(t, e.s.DeletePort(p2, p.ID), fault.NotFound, "PortNotFound")
	ps, _, err := e.s.ListPorts(p2, ListOptions{})
	ok(t, err)
	if len(ps) != 0 {
		t.Errorf("p2 sees %d ports", len(ps))
	}
	// The network's owner sees a port another project made on its shared network.
	_, err = e.s.UpdateNetwork(e.admin, n.ID, NetworkUpdate{Shared: ptr(true)})
	ok(t, err)
	theirs := e.port(t, p2, PortCreate{NetworkID: n.ID})
	if _, err := e.s.GetPort(p1, theirs.ID); err != nil {
		t.Errorf("network owner cannot see a port on its network: %v", err)
	}
	// Filters.
	got, _, err := e.s.ListPorts(p1, ListOptions{Filters: map[string][]string{"fixed_ips": {"ip_address=" + p.FixedIPs[0].IPAddress}}})
	ok(t, err)
	if len(got) != 1 || got[0].ID != p.ID {
		t.Errorf("fixed_ips filter: %+v", got)
	}
	got, _, err = e.s.ListPorts(p1, ListOptions{Filters: map[string][]string{"device_owner": {OwnerDHCP}}})
	ok(t, err)
	if len(got) != 0 {
		t.Errorf("dhcp ports without DHCP: %+v", got)
	}
}

func TestUpdatePort(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	old := p.FixedIPs[0].IPAddress

	// Keep the address by naming only the subnet, and add a specific one.
	u, err := e.s.UpdatePort(p1, p.ID, PortUpdate{FixedIPs: &[]FixedIPRequest{{SubnetID: sn.ID}, {IPAddress: "10.0.0.77"}}})
	ok(t, err)
	if len(u.FixedIPs) != 2 || u.FixedIPs[0].IPAddress != old || u.FixedIPs[1].IPAddress != "10.0.0.77" {
		t.Fatalf("fixed ips %+v", u.FixedIPs)
	}
	// Drop the first: it is free for others again.
	_, err = e.s.UpdatePort(p1, p.ID, PortUpdate{FixedIPs: &[]FixedIPRequest{{IPAddress: "10.0.0.77"}}})
	ok(t, err)
	e.port(t, p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{{IPAddress: old}}})

	// Binding is for admins and the service role.
	_, err = e.s.UpdatePort(p1, p.ID, PortUpdate{BindingHostID: ptr("compute1")})
	wantFault(t, err, fault.Forbidden, "")
	svc := as("service-project", "service")
	u, err = e.s.UpdatePort(svc, p.ID, PortUpdate{BindingHostID: ptr("compute1"), DeviceID: ptr("vm-1"), DeviceOwner: ptr("compute:nova")})
	ok(t, err)
	if u.BindingVIFType != VIFTypeBridge || u.DeviceOwner != "compute:nova" {
		t.Errorf("bound port %+v", u)
	}
	// A bound port's MAC cannot change.
	_, err = e.s.UpdatePort(e.admin, p.ID, PortUpdate{MACAddress: ptr("fa:16:3e:00:00:01")})
	wantFault(t, err, fault.Conflict, "PortBound")

	// Port security cannot go off while groups are applied.
	_, err = e.s.UpdatePort(p1, p.ID, PortUpdate{PortSecurityEnabled: ptr(false)})
	wantFault(t, err, fault.Conflict, "PortSecurityPortHasSecurityGroup")
	u, err = e.s.UpdatePort(p1, p.ID, PortUpdate{PortSecurityEnabled: ptr(false), SecurityGroups: &[]string{}})
	ok(t, err)
	if u.PortSecurityEnabled || len(u.SecurityGroups) != 0 {
		t.Errorf("port %+v", u)
	}
	// A compute port may be deleted by its user.
	ok(t, e.s.DeletePort(p1, p.ID))
}

func TestSetPortStatus(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	ok(t, e.s.SetPortStatus(e.admin, p.ID, StatusActive))
	got, err := e.s.GetPort(p1, p.ID)
	ok(t, err)
	if got.Status != StatusActive {
		t.Errorf("status %s", got.Status)
	}
	wantFault(t, e.s.SetPortStatus(e.admin, p.ID, "WEIRD"), fault.Invalid, "")
}

func TestSLAACPort(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	v6 := e.subnet(t, p1, SubnetCreate{NetworkID: n.ID, CIDR: "2001:db8::/64", IPv6AddressMode: ModeSLAAC, IPv6RAMode: ModeSLAAC})
	p := e.port(t, p1, PortCreate{NetworkID: n.ID, MACAddress: "fa:16:3e:12:34:56"})
	if len(p.FixedIPs) != 2 || p.FixedIPs[1] != (FixedIP{v6.ID, "2001:db8::f816:3eff:fe12:3456"}) {
		t.Errorf("fixed ips %+v", p.FixedIPs)
	}
	_, err := e.s.CreatePort(p1, PortCreate{NetworkID: n.ID, FixedIPs: []FixedIPRequest{{IPAddress: "2001:db8::5"}}})
	wantFault(t, err, fault.Invalid, "")
}

// Allocation is next-fit: a released address is not handed out again
// until the pools wrap around.
func TestNextFitAllocation(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, _ := e.netWithSubnet(t, p1, "10.0.0.0/29", false) // pool .2-.6
	var ports []*Port
	for i := 0; i < 3; i++ {
		ports = append(ports, e.port(t, p1, PortCreate{NetworkID: n.ID}))
	}
	ok(t, e.s.DeletePort(p1, ports[1].ID)) // frees .3
	var got []string
	for i := 0; i < 3; i++ {
		got = append(got, e.port(t, p1, PortCreate{NetworkID: n.ID}).FixedIPs[0].IPAddress)
	}
	if got[0] != "10.0.0.5" || got[1] != "10.0.0.6" || got[2] != "10.0.0.3" {
		t.Errorf("allocation order %v, want .5 .6 .3", got)
	}
}

func TestNextInPools(t *testing.T) {
	pools := []pool{
		{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
		{netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.11")},
	}
	for _, tc := range [][2]string{{"10.0.0.2", "10.0.0.3"}, {"10.0.0.3", "10.0.0.10"}, {"10.0.0.11", "10.0.0.2"},
		{"10.0.0.1", "10.0.0.2"}, {"10.0.0.5", "10.0.0.10"}, {"10.0.0.99", "10.0.0.2"}} {
		if got := nextInPools(pools, netip.MustParseAddr(tc[0])); got.String() != tc[1] {
			t.Errorf("nextInPools(%s) = %s, want %s", tc[0], got, tc[1])
		}
	}
}
