package network

import (
	"fmt"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestCreateNetworkDefaults(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n := e.network(t, ctx, NetworkCreate{Name: "private"})
	if n.ProjectID != "p1" || n.NetworkType != TypeVXLAN || n.SegmentationID == nil || *n.SegmentationID != 1 ||
		n.MTU != 1450 || !n.AdminStateUp || n.Status != StatusActive || !n.PortSecurityEnabled || n.Shared || n.External ||
		n.RevisionNumber != 1 {
		t.Errorf("network %+v", n)
	}
	n2 := e.network(t, ctx, NetworkCreate{Name: "second"})
	if *n2.SegmentationID != 2 {
		t.Errorf("second VNI %d, want 2", *n2.SegmentationID)
	}
	if !e.notes.has("network create " + n.ID) {
		t.Errorf("notifier heard %v", e.notes.events)
	}
	// A freed VNI is not reused at once, only when the range's top is reached.
	ok(t, e.s.DeleteNetwork(ctx, n.ID))
	n3 := e.network(t, ctx, NetworkCreate{Name: "third"})
	if *n3.SegmentationID != 3 {
		t.Errorf("next VNI %d, want 3", *n3.SegmentationID)
	}
	e2 := newEnv(t, func(c *Config) { c.VNIRange = [2]int{10, 12} })
	var got []int
	for i := 0; i < 3; i++ {
		got = append(got, *e2.network(t, ctx, NetworkCreate{}).SegmentationID)
	}
	_, _, err := e2.s.ListNetworks(ctx, ListOptions{Filters: map[string][]string{"provider:segmentation_id": {"11"}}})
	wantFault(t, err, fault.Forbidden, "") // a member may not probe an attribute it cannot see
	all, _, err := e2.s.ListNetworks(e2.admin, ListOptions{Filters: map[string][]string{"provider:segmentation_id": {"11"}}})
	ok(t, err)
	ok(t, e2.s.DeleteNetwork(ctx, all[0].ID))
	got = append(got, *e2.network(t, ctx, NetworkCreate{}).SegmentationID)
	if _, err := e2.s.CreateNetwork(ctx, NetworkCreate{}); fault.TypeOf(err) != "NoNetworkAvailable" {
		t.Errorf("VNI range exhausted: %v", err)
	}
	if fmt.Sprint(got) != "[10 11 12 11]" {
		t.Errorf("VNIs %v, want [10 11 12 11]", got)
	}
}

func TestCreateNetworkProvider(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.VLANRanges = map[string][2]int{"physnet1": {100, 101}} })
	tests := []struct {
		name string
		in   NetworkCreate
		kind fault.Kind
		typ  string
		mtu  int
	}{
		{"flat", NetworkCreate{NetworkType: TypeFlat, PhysicalNetwork: "public"}, 0, "", 1500},
		{"flat twice", NetworkCreate{NetworkType: TypeFlat, PhysicalNetwork: "public"}, fault.Conflict, "FlatNetworkInUse", 0},
		{"flat without physnet", NetworkCreate{NetworkType: TypeFlat}, fault.Invalid, "InvalidInput", 0},
		{"flat with segment", NetworkCreate{NetworkType: TypeFlat, PhysicalNetwork: "x", SegmentationID: ptr(3)}, fault.Invalid, "", 0},
		{"vlan auto", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1"}, 0, "", 1500},
		{"vlan given", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: ptr(200)}, 0, "", 1500},
		{"vlan taken", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: ptr(200)}, fault.Conflict, "VlanIdInUse", 0},
		{"vlan out of range", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: ptr(4095)}, fault.Invalid, "", 0},
		{"vlan auto second", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1"}, 0, "", 1500},
		{"vlan exhausted", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1"}, fault.Unavailable, "NoNetworkAvailable", 0},
		{"vlan unknown physnet", NetworkCreate{NetworkType: TypeVLAN, PhysicalNetwork: "other"}, fault.Unavailable, "NoNetworkAvailable", 0},
		{"vxlan given", NetworkCreate{NetworkType: TypeVXLAN, SegmentationID: ptr(5000)}, 0, "", 1450},
		{"vxlan taken", NetworkCreate{NetworkType: TypeVXLAN, SegmentationID: ptr(5000)}, fault.Conflict, "TunnelIdInUse", 0},
		{"vxlan with physnet", NetworkCreate{NetworkType: TypeVXLAN, PhysicalNetwork: "x"}, fault.Invalid, "", 0},
		{"gre", NetworkCreate{NetworkType: "gre"}, fault.Invalid, "", 0},
		{"bad physnet", NetworkCreate{NetworkType: TypeFlat, PhysicalNetwork: "eth0; rm -rf"}, fault.Invalid, "", 0},
		{"physnet without type", NetworkCreate{PhysicalNetwork: "public"}, fault.Invalid, "", 0},
		{"mtu too big", NetworkCreate{MTU: ptr(1500)}, fault.Invalid, "", 0},
		{"mtu smaller", NetworkCreate{MTU: ptr(1400)}, 0, "", 1400},
		{"name with newline", NetworkCreate{Name: "a\nb"}, fault.Invalid, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := e.s.CreateNetwork(e.admin, tc.in)
			if tc.kind != 0 {
				wantFault(t, err, tc.kind, tc.typ)
				return
			}
			ok(t, err)
			if n.MTU != tc.mtu {
				t.Errorf("mtu %d, want %d", n.MTU, tc.mtu)
			}
		})
	}
}

func TestNetworkPolicy(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	tests := []struct {
		name string
		in   NetworkCreate
	}{
		{"external", NetworkCreate{External: ptr(true)}},
		{"shared", NetworkCreate{Shared: ptr(true)}},
		{"provider type", NetworkCreate{NetworkType: TypeVXLAN}},
		{"provider physnet", NetworkCreate{NetworkType: TypeFlat, PhysicalNetwork: "public"}},
		{"segment", NetworkCreate{NetworkType: TypeVXLAN, SegmentationID: ptr(7)}},
		{"other project", NetworkCreate{ProjectID: "p2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.CreateNetwork(p1, tc.in)
			wantFault(t, err, fault.Forbidden, "PolicyNotAuthorized")
		})
	}
	// A reader may not create.
	_, err := e.s.CreateNetwork(as("p1", "reader"), NetworkCreate{})
	wantFault(t, err, fault.Forbidden, "")
	// Explicitly asking for the defaults is fine.
	e.network(t, p1, NetworkCreate{External: ptr(false), Shared: ptr(false)})
}

func TestNetworkVisibility(t *testing.T) {
	e := newEnv(t)
	p1, p2 := member("p1"), member("p2")
	private := e.network(t, p1, NetworkCreate{Name: "private"})
	shared := e.network(t, e.admin, NetworkCreate{Name: "shared", Shared: ptr(true)})
	ext, _ := e.external(t, "203.0.113.0/24")

	if _, err := e.s.GetNetwork(p2, private.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("other project's network: %v, want NotFound", err)
	}
	for _, id := range []string{shared.ID, ext.ID, private.ID} {
		if _, err := e.s.GetNetwork(p1, id); err != nil {
			t.Errorf("get %s as p1: %v", id, err)
		}
	}
	ns, _, err := e.s.ListNetworks(p2, ListOptions{})
	ok(t, err)
	if len(ns) != 2 {
		t.Errorf("p2 sees %d networks, want shared and external", len(ns))
	}
	all, _, err := e.s.ListNetworks(e.admin, ListOptions{})
	ok(t, err)
	if len(all) != 3 {
		t.Errorf("admin sees %d networks, want 3", len(all))
	}
	// Updating or deleting another project's network is NotFound.
	_, err = e.s.UpdateNetwork(p2, private.ID, NetworkUpdate{Name: ptr("x")})
	wantFault(t, err, fault.NotFound, "NetworkNotFound")
	wantFault(t, e.s.DeleteNetwork(p2, private.ID), fault.NotFound, "NetworkNotFound")
	// A visible shared network may not be changed by others.
	_, err = e.s.UpdateNetwork(p2, shared.ID, NetworkUpdate{Name: ptr("x")})
	wantFault(t, err, fault.Forbidden, "")
	// Filters, sorting and paging.
	ext2 := e.network(t, e.admin, NetworkCreate{Name: "aaa", External: ptr(true)})
	got, _, err := e.s.ListNetworks(p1, ListOptions{Filters: map[string][]string{"router:external": {"True"}},
		SortKeys: []string{"name"}, SortDirs: []string{"asc"}})
	ok(t, err)
	if len(got) != 2 || got[0].ID != ext2.ID || got[1].ID != ext.ID {
		t.Errorf("external networks sorted by name: %+v", got)
	}
	page, more, err := e.s.ListNetworks(e.admin, ListOptions{Limit: 2, SortKeys: []string{"name"}})
	ok(t, err)
	if len(page) != 2 || !more {
		t.Fatalf("first page %d more=%v", len(page), more)
	}
	rest, more, err := e.s.ListNetworks(e.admin, ListOptions{Limit: 2, SortKeys: []string{"name"}, Marker: page[1].ID})
	ok(t, err)
	if len(rest) != 2 || more || rest[0].Name < page[1].Name {
		t.Errorf("second page %+v more=%v", rest, more)
	}
	_, _, err = e.s.ListNetworks(p1, ListOptions{Filters: map[string][]string{"bogus": {"1"}}})
	wantFault(t, err, fault.Invalid, "")
	_, _, err = e.s.ListNetworks(p1, ListOptions{SortKeys: []string{"bogus"}})
	wantFault(t, err, fault.Invalid, "")
}

func TestUpdateNetwork(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n := e.network(t, p1, NetworkCreate{Name: "a"})
	u, err := e.s.UpdateNetwork(p1, n.ID, NetworkUpdate{Name: ptr("b"), AdminStateUp: ptr(false), MTU: ptr(1400)})
	ok(t, err)
	if u.Name != "b" || u.AdminStateUp || u.MTU != 1400 || u.RevisionNumber != 2 {
		t.Errorf("updated %+v", u)
	}
	_, err = e.s.UpdateNetwork(p1, n.ID, NetworkUpdate{Shared: ptr(true)})
	wantFault(t, err, fault.Forbidden, "")

	// Unsharing a network another project uses is refused.
	shared := e.network(t, e.admin, NetworkCreate{Shared: ptr(true)})
	e.subnet(t, e.admin, SubnetCreate{NetworkID: shared.ID, CIDR: "10.9.0.0/24"})
	e.port(t, member("p2"), PortCreate{NetworkID: shared.ID})
	_, err = e.s.UpdateNetwork(e.admin, shared.ID, NetworkUpdate{Shared: ptr(false)})
	wantFault(t, err, fault.Conflict, "InvalidSharedSetting")
}

func TestDeleteNetworkInUse(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	wantFault(t, e.s.DeleteNetwork(p1, n.ID), fault.Conflict, "NetworkInUse")
	ok(t, e.s.DeletePort(p1, p.ID))
	// Only the DHCP port is left: it goes with the network, and so does the subnet.
	ok(t, e.s.DeleteNetwork(p1, n.ID))
	if _, err := e.s.GetSubnet(p1, sn.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("subnet after network delete: %v", err)
	}
	ports, _, err := e.s.ListPorts(e.admin, ListOptions{})
	ok(t, err)
	if len(ports) != 0 {
		t.Errorf("ports left: %+v", ports)
	}
}

// The notifier hears of every committed change, and of nothing that failed.
func TestNotifier(t *testing.T) {
	e := newEnv(t)
	p1 := member("p1")
	n, sn := e.netWithSubnet(t, p1, "10.0.0.0/24", true)
	dhcp, err := e.s.NetworkPlan(e.admin, n.ID)
	ok(t, err)
	p := e.port(t, p1, PortCreate{NetworkID: n.ID})
	_, err = e.s.CreateSubnet(p1, SubnetCreate{NetworkID: n.ID, CIDR: "10.0.0.0/16"})
	if err == nil {
		t.Fatal("overlapping subnet created")
	}
	ok(t, e.s.DeletePort(p1, p.ID))
	ok(t, e.s.DeleteNetwork(p1, n.ID))
	want := []string{
		"network create " + n.ID, "subnet create " + sn.ID, "port create " + dhcp.DHCPPort.ID,
		"security_group create " + p.SecurityGroups[0], "port create " + p.ID,
		"port delete " + p.ID, "port delete " + dhcp.DHCPPort.ID, "subnet delete " + sn.ID, "network delete " + n.ID,
	}
	if fmt.Sprint(e.notes.events) != fmt.Sprint(want) {
		t.Errorf("events\n%v\nwant\n%v", e.notes.events, want)
	}
}
