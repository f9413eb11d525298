package network

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in      string
		version int
		want    string // "" means rejected
	}{
		{"10.0.0.0/24", 4, "10.0.0.0/24"},
		{"10.0.0.5/24", 0, "10.0.0.0/24"}, // host bits cleared, as Neutron does
		{"2001:db8::/64", 6, "2001:db8::/64"},
		{"2001:db8::1/64", 0, "2001:db8::/64"},
		{"10.0.0.0/30", 4, "10.0.0.0/30"},
		{"10.0.0.0/31", 4, ""},
		{"10.0.0.0/32", 4, ""},
		{"0.0.0.0/0", 4, ""},
		{"10.0.0.0/7", 4, ""},
		{"::/0", 6, ""},
		{"2001:db8::/127", 6, ""},
		{"10.0.0.0/24", 6, ""},
		{"2001:db8::/64", 4, ""},
		{"10.0.0.0", 4, ""},
		{"10/24", 4, ""},
		{"10.0.0.256/24", 4, ""},
		{"224.0.0.0/24", 4, ""},
		{"127.0.0.0/8", 4, ""},
		{"fe80::1%eth0/64", 6, ""},
		{"::ffff:10.0.0.0/120", 0, ""},
		{"nonsense", 4, ""},
		{"", 4, ""},
	}
	for _, tc := range tests {
		p, err := parseCIDR(tc.in, tc.version)
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseCIDR(%q, %d) = %s, want an error", tc.in, tc.version, p)
			} else if fault.KindOf(err) != fault.Invalid {
				t.Errorf("parseCIDR(%q): %v is not Invalid", tc.in, err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("parseCIDR(%q, %d) = %s, %v; want %s", tc.in, tc.version, p, err, tc.want)
		}
	}
}

func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "2001:db8::/64", "0.0.0.0/0", "10/8", "::ffff:1.2.3.4/104", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseCIDR(s, 0)
		if err != nil {
			return
		}
		if p != p.Masked() {
			t.Fatalf("%q: %s has host bits", s, p)
		}
		u := usableRange(p)
		if u.end.Less(u.start) {
			t.Fatalf("%q: empty usable range %s", s, u)
		}
		pools := defaultPools(p, p.Addr().Next())
		for _, pl := range pools {
			if !p.Contains(pl.start) || !p.Contains(pl.end) || pl.end.Less(pl.start) {
				t.Fatalf("%q: bad default pool %s", s, pl)
			}
		}
		// Re-parsing the canonical form gives the same prefix.
		q, err := parseCIDR(p.String(), 0)
		if err != nil || q != p {
			t.Fatalf("%q: canonical %s reparses to %s, %v", s, p, q, err)
		}
	})
}

func TestDefaultPools(t *testing.T) {
	tests := []struct {
		cidr, gw string
		want     []string
	}{
		{"10.0.0.0/24", "10.0.0.1", []string{"10.0.0.2-10.0.0.254"}},
		{"10.0.0.0/24", "10.0.0.254", []string{"10.0.0.1-10.0.0.253"}},
		{"10.0.0.0/24", "10.0.0.100", []string{"10.0.0.1-10.0.0.99", "10.0.0.101-10.0.0.254"}},
		{"10.0.0.0/24", "", []string{"10.0.0.1-10.0.0.254"}},
		{"10.0.0.0/30", "10.0.0.1", []string{"10.0.0.2-10.0.0.2"}},
		{"2001:db8::/120", "2001:db8::1", []string{"2001:db8::2-2001:db8::ff"}},
	}
	for _, tc := range tests {
		var gw netip.Addr
		if tc.gw != "" {
			gw = netip.MustParseAddr(tc.gw)
		}
		var got []string
		for _, p := range defaultPools(netip.MustParsePrefix(tc.cidr), gw) {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("defaultPools(%s, %s) = %v, want %v", tc.cidr, tc.gw, got, tc.want)
		}
	}
}

func TestEUI64(t *testing.T) {
	a, err := eui64(netip.MustParsePrefix("2001:db8::/64"), "fa:16:3e:12:34:56")
	ok(t, err)
	if a.String() != "2001:db8::f816:3eff:fe12:3456" {
		t.Errorf("eui64 = %s", a)
	}
}

func TestCreateSubnet(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n := e.network(t, p1, NetworkCreate{})
	other := e.network(t, p1, NetworkCreate{})
	tests := []struct {
		name  string
		in    SubnetCreate
		kind  fault.Kind
		typ   string
		check func(t *testing.T, sn *Subnet)
	}{
		{"defaults", SubnetCreate{CIDR: "10.0.0.0/24", DNSNameservers: []string{"8.8.8.8"}}, 0, "", func(t *testing.T, sn *Subnet) {
			if sn.IPVersion != 4 || sn.GatewayIP != "10.0.0.1" || !sn.EnableDHCP || len(sn.AllocationPools) != 1 ||
				sn.AllocationPools[0] != (AllocationPool{"10.0.0.2", "10.0.0.254"}) || sn.DNSNameservers[0] != "8.8.8.8" {
				t.Errorf("subnet %+v", sn)
			}
		}},
		{"overlap in one network", SubnetCreate{CIDR: "10.0.0.128/25"}, fault.Invalid, "InvalidInput", nil},
		{"same cidr on another network", SubnetCreate{NetworkID: other.ID, CIDR: "10.0.0.0/24"}, 0, "", nil},
		{"no gateway", SubnetCreate{CIDR: "10.1.0.0/24", GatewayIP: ptr("")}, 0, "", func(t *testing.T, sn *Subnet) {
			if sn.GatewayIP != "" || sn.AllocationPools[0].Start != "10.1.0.1" {
				t.Errorf("subnet %+v", sn)
			}
		}},
		{"custom pools", SubnetCreate{CIDR: "10.2.0.0/24", AllocationPools: []AllocationPool{{"10.2.0.100", "10.2.0.200"}}}, 0, "",
			func(t *testing.T, sn *Subnet) {
				if sn.AllocationPools[0] != (AllocationPool{"10.2.0.100", "10.2.0.200"}) {
					t.Errorf("pools %+v", sn.AllocationPools)
				}
			}},
		{"pool outside", SubnetCreate{CIDR: "10.3.0.0/24", AllocationPools: []AllocationPool{{"10.3.0.100", "10.3.1.5"}}},
			fault.Invalid, "OutOfBoundsAllocationPool", nil},
		{"pool on broadcast", SubnetCreate{CIDR: "10.3.0.0/24", AllocationPools: []AllocationPool{{"10.3.0.100", "10.3.0.255"}}},
			fault.Invalid, "OutOfBoundsAllocationPool", nil},
		{"pool reversed", SubnetCreate{CIDR: "10.3.0.0/24", AllocationPools: []AllocationPool{{"10.3.0.100", "10.3.0.50"}}},
			fault.Invalid, "InvalidAllocationPool", nil},
		{"pools overlap", SubnetCreate{CIDR: "10.3.0.0/24", AllocationPools: []AllocationPool{{"10.3.0.10", "10.3.0.50"}, {"10.3.0.50", "10.3.0.60"}}},
			fault.Conflict, "OverlappingAllocationPools", nil},
		{"gateway in pool", SubnetCreate{CIDR: "10.3.0.0/24", GatewayIP: ptr("10.3.0.20"), AllocationPools: []AllocationPool{{"10.3.0.10", "10.3.0.50"}}},
			fault.Conflict, "GatewayConflictWithAllocationPools", nil},
		{"gateway outside", SubnetCreate{CIDR: "10.3.0.0/24", GatewayIP: ptr("10.4.0.1")}, fault.Invalid, "", nil},
		{"gateway is network address", SubnetCreate{CIDR: "10.3.0.0/24", GatewayIP: ptr("10.3.0.0")}, fault.Invalid, "", nil},
		{"invalid cidr", SubnetCreate{CIDR: "10.3.0.0/33"}, fault.Invalid, "", nil},
		{"no cidr", SubnetCreate{}, fault.Invalid, "", nil},
		{"version mismatch", SubnetCreate{CIDR: "10.3.0.0/24", IPVersion: 6}, fault.Invalid, "", nil},
		{"too small", SubnetCreate{CIDR: "10.3.0.0/32"}, fault.Invalid, "", nil},
		{"bad nameserver", SubnetCreate{CIDR: "10.3.0.0/24", DNSNameservers: []string{"dns.example"}}, fault.Invalid, "", nil},
		{"duplicate nameserver", SubnetCreate{CIDR: "10.3.0.0/24", DNSNameservers: []string{"1.1.1.1", "1.1.1.1"}}, fault.Invalid, "", nil},
		{"host routes", SubnetCreate{CIDR: "10.4.0.0/24", HostRoutes: []HostRoute{{"192.168.0.0/16", "10.4.0.254"}}}, 0, "", nil},
		{"bad host route", SubnetCreate{CIDR: "10.5.0.0/24", HostRoutes: []HostRoute{{"2001:db8::/64", "10.5.0.254"}}}, fault.Invalid, "", nil},
		{"ipv6 slaac", SubnetCreate{CIDR: "2001:db8:1::/64", IPv6AddressMode: ModeSLAAC, IPv6RAMode: ModeSLAAC}, 0, "", func(t *testing.T, sn *Subnet) {
			if sn.IPVersion != 6 || sn.GatewayIP != "2001:db8:1::1" {
				t.Errorf("subnet %+v", sn)
			}
		}},
		{"ipv6 slaac not /64", SubnetCreate{CIDR: "2001:db8:2::/80", IPv6AddressMode: ModeSLAAC}, fault.Invalid, "", nil},
		{"ipv6 modes differ", SubnetCreate{CIDR: "2001:db8:2::/64", IPv6AddressMode: ModeSLAAC, IPv6RAMode: ModeDHCPv6Stateful}, fault.Invalid, "", nil},
		{"ipv6 mode on v4", SubnetCreate{CIDR: "10.6.0.0/24", IPv6AddressMode: ModeSLAAC}, fault.Invalid, "", nil},
		{"missing network", SubnetCreate{NetworkID: "nope", CIDR: "10.7.0.0/24"}, fault.NotFound, "NetworkNotFound", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.NetworkID == "" {
				tc.in.NetworkID = n.ID
			}
			sn, err := e.s.CreateSubnet(p1, tc.in)
			if tc.kind != 0 {
				wantFault(t, err, tc.kind, tc.typ)
				return
			}
			ok(t, err)
			if tc.check != nil {
				tc.check(t, sn)
			}
		})
	}
	// Another project may not add a subnet to the network, nor see it.
	_, err := e.s.CreateSubnet(member("p2"), SubnetCreate{NetworkID: n.ID, CIDR: "10.8.0.0/24"})
	wantFault(t, err, fault.NotFound, "NetworkNotFound")
	// Nor to a shared network it does not own.
	shared := e.network(t, e.admin, NetworkCreate{Shared: ptr(true)})
	_, err = e.s.CreateSubnet(member("p2"), SubnetCreate{NetworkID: shared.ID, CIDR: "10.8.0.0/24"})
	wantFault(t, err, fault.Forbidden, "")
}

func TestSubnetDHCPPort(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	plan, err := e.s.NetworkPlan(e.admin, n.ID)
	ok(t, err)
	if plan.DHCPPort == nil || plan.Subnets[0].DHCPAddress != "10.0.0.2" || plan.DHCPPort.DeviceOwner != OwnerDHCP {
		t.Fatalf("plan %+v", plan)
	}
	// A second DHCP subnet adds an address to the same port.
	sn2 := e.subnet(t, p1, SubnetCreate{NetworkID: n.ID, CIDR: "10.0.1.0/24"})
	plan, _ = e.s.NetworkPlan(e.admin, n.ID)
	if len(plan.DHCPPort.FixedIPs) != 2 || plan.Subnets[1].DHCPAddress != "10.0.1.2" {
		t.Errorf("dhcp port %+v", plan.DHCPPort)
	}
	// Turning DHCP off releases the address; deleting the subnet too.
	_, err = e.s.UpdateSubnet(p1, sn2.ID, SubnetUpdate{EnableDHCP: ptr(false)})
	ok(t, err)
	plan, _ = e.s.NetworkPlan(e.admin, n.ID)
	if len(plan.DHCPPort.FixedIPs) != 1 {
		t.Errorf("after dhcp off: %+v", plan.DHCPPort)
	}
	ok(t, e.s.DeleteSubnet(p1, sn.ID))
	plan, _ = e.s.NetworkPlan(e.admin, n.ID)
	if plan.DHCPPort != nil {
		t.Errorf("dhcp port left without DHCP subnets: %+v", plan.DHCPPort)
	}
}

func TestSubnetInUse(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	wantFault(t, e.s.DeleteSubnet(p1, sn.ID), fault.Conflict, "SubnetInUse")
	ok(t, e.s.DeletePort(p1, p.ID))
	ok(t, e.s.DeleteSubnet(p1, sn.ID))
}

func TestUpdateSubnet(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", false)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	u, err := e.s.UpdateSubnet(p1, sn.ID, SubnetUpdate{Name: ptr("renamed"), DNSNameservers: &[]string{"1.1.1.1"},
		AllocationPools: &[]AllocationPool{{"10.0.0.10", "10.0.0.20"}}})
	ok(t, err)
	if u.Name != "renamed" || u.DNSNameservers[0] != "1.1.1.1" || u.AllocationPools[0].Start != "10.0.0.10" || u.RevisionNumber != 2 {
		t.Errorf("updated %+v", u)
	}
	// The gateway may not move onto an address a port holds.
	_, err = e.s.UpdateSubnet(p1, sn.ID, SubnetUpdate{GatewayIP: ptr(p.FixedIPs[0].IPAddress)})
	wantFault(t, err, fault.Conflict, "GatewayIpInUse")
	_, err = e.s.UpdateSubnet(p1, sn.ID, SubnetUpdate{GatewayIP: ptr("10.0.0.15")})
	wantFault(t, err, fault.Conflict, "GatewayConflictWithAllocationPools")
	u, err = e.s.UpdateSubnet(p1, sn.ID, SubnetUpdate{GatewayIP: ptr("")})
	ok(t, err)
	if u.GatewayIP != "" {
		t.Errorf("gateway not cleared: %+v", u)
	}
	_, err = e.s.UpdateSubnet(member("p2"), sn.ID, SubnetUpdate{Name: ptr("x")})
	wantFault(t, err, fault.NotFound, "SubnetNotFound")
}
