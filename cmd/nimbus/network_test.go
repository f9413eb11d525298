package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// quietNotifier stands for the data plane, which this test does not need.
type quietNotifier struct{}

func (quietNotifier) NetworkChanged(context.Context, network.Op, *network.Network)             {}
func (quietNotifier) SubnetChanged(context.Context, network.Op, *network.Subnet)               {}
func (quietNotifier) PortChanged(context.Context, network.Op, *network.Port)                   {}
func (quietNotifier) RouterChanged(context.Context, network.Op, *network.Router)               {}
func (quietNotifier) FloatingIPChanged(context.Context, network.Op, *network.FloatingIP)       {}
func (quietNotifier) SecurityGroupChanged(context.Context, network.Op, *network.SecurityGroup) {}

// TestNetworkEvents: networks, subnets, routers and drawn ports are
// announced as network events, to everyone when shared or external and to
// their project otherwise; an instance's port and a floating IP moving onto
// and off it also announce the instance (so live rows show new addresses),
// other ports no instance.
func TestNetworkEvents(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	sub := bus.Subscribe(64)
	notify := newNetworkEvents(quietNotifier{}, bus)
	nets, err := network.New(ctx, d, network.Config{Policy: policy.New(network.PolicyRules()), Notifier: notify})
	if err != nil {
		t.Fatal(err)
	}
	if err := notify.attach(ctx, nets); err != nil {
		t.Fatal(err)
	}
	admin := auth.WithCredentials(ctx, &auth.Credentials{UserID: "a", ProjectID: "p0", Roles: []string{"admin", "member", "reader"}})
	yes := true
	pub, err := nets.CreateNetwork(admin, network.NetworkCreate{Name: "public", External: &yes, NetworkType: "flat", PhysicalNetwork: "public"})
	if err != nil {
		t.Fatal(err)
	}
	pubSubnet, err := nets.CreateSubnet(admin, network.SubnetCreate{NetworkID: pub.ID, CIDR: "172.24.4.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := nets.CreateNetwork(admin, network.NetworkCreate{ProjectID: "p1", Name: "private"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := nets.CreateSubnet(admin, network.SubnetCreate{NetworkID: n.ID, ProjectID: "p1", CIDR: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := nets.CreateRouter(admin, network.RouterCreate{ProjectID: "p1", Name: "r", Gateway: &network.GatewayRequest{NetworkID: pub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nets.AddRouterInterface(admin, rt.ID, sn.ID, ""); err != nil {
		t.Fatal(err)
	}
	drain := func() []events.Event {
		var got []events.Event
		for {
			select {
			case e := <-sub.C():
				got = append(got, e)
			case <-time.After(50 * time.Millisecond):
				return got
			}
		}
	}
	var got []string
	for _, e := range drain() {
		if e.Kind != events.KindNetwork || e.Deleted {
			t.Fatalf("building the topology announced %+v", e)
		}
		got = append(got, e.ID+"@"+e.ProjectID)
	}
	ifaces, _, err := nets.ListPorts(admin, network.ListOptions{Filters: map[string][]string{"device_owner": {network.OwnerRouterInterface}}})
	if err != nil || len(ifaces) != 1 {
		t.Fatalf("router interfaces %v %v", ifaces, err)
	}
	// The router's gateway port is not drawn apart from its router, and
	// the router's change comes twice: created, then its interface added.
	want := []string{pub.ID + "@", pubSubnet.ID + "@", n.ID + "@p1", sn.ID + "@p1", rt.ID + "@p1", ifaces[0].ID + "@p1", rt.ID + "@p1"}
	if !slices.Equal(got, want) {
		t.Fatalf("network events\n got %v\nwant %v", got, want)
	}
	port, err := nets.CreatePort(admin, network.PortCreate{NetworkID: n.ID, ProjectID: "p1", DeviceID: "vm-1", DeviceOwner: "compute:nova"})
	if err != nil {
		t.Fatal(err)
	}
	wantVM := func(what string) {
		t.Helper()
		got := drain()
		if len(got) == 0 {
			t.Fatalf("%s: no event", what)
		}
		vm := 0
		for _, e := range got {
			switch {
			case e.Kind == events.KindInstance && e.ID == "vm-1" && e.ProjectID == "p1":
				vm++
			case e.Kind == events.KindNetwork && e.ID == port.ID && e.ProjectID == "p1":
			default:
				t.Fatalf("%s: %+v", what, e)
			}
		}
		if vm == 0 {
			t.Fatalf("%s: the instance was not announced: %+v", what, got)
		}
	}
	wantVM("port created")
	f, err := nets.CreateFloatingIP(admin, network.FloatingIPCreate{ProjectID: "p1", FloatingNetworkID: pub.ID, PortID: port.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantVM("floating IP associated")
	if _, err := nets.UpdateFloatingIP(admin, f.ID, network.FloatingIPUpdate{SetPort: true}); err != nil {
		t.Fatal(err)
	}
	wantVM("floating IP disassociated")

	// Associated before a restart, disassociated after it: the restarted
	// controller's notifier learnt the floating IP's port when attached.
	if _, err := nets.UpdateFloatingIP(admin, f.ID, network.FloatingIPUpdate{SetPort: true, PortID: port.ID}); err != nil {
		t.Fatal(err)
	}
	wantVM("floating IP associated again")
	restarted := newNetworkEvents(quietNotifier{}, bus)
	nets2, err := network.New(ctx, d, network.Config{Policy: policy.New(network.PolicyRules()), Notifier: restarted})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.attach(ctx, nets2); err != nil {
		t.Fatal(err)
	}
	if _, err := nets2.UpdateFloatingIP(admin, f.ID, network.FloatingIPUpdate{SetPort: true}); err != nil {
		t.Fatal(err)
	}
	wantVM("floating IP disassociated after a restart")

	if err := nets.DeletePort(admin, port.ID); err != nil {
		t.Fatal(err)
	}
	deleted := false
	for _, e := range drain() {
		deleted = deleted || e.Kind == events.KindNetwork && e.ID == port.ID && e.Deleted
	}
	if !deleted {
		t.Fatal("the deleted port was not announced")
	}
	// Sharing may be taken away by an update: every project hears of it.
	renamed := "renamed"
	if _, err := nets.UpdateNetwork(admin, n.ID, network.NetworkUpdate{Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	if got := drain(); len(got) != 1 || got[0].Kind != events.KindNetwork || got[0].ID != n.ID || got[0].ProjectID != "" {
		t.Fatalf("network update announced %+v", got)
	}
}
