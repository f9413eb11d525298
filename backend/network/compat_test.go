package network_test

// Compatibility: gophercloud v2, a stock OpenStack client, finds the
// network API through the identity catalog and walks the classic topology.

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/provider"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/nimbus-cloud/nimbus/backend/identity"
)

// compatNetworkClient authenticates with gophercloud and returns the
// network client found through the token's catalog.
func compatNetworkClient(t testing.TB, e *apiEnv, user, password, projectID string) *gophercloud.ServiceClient {
	t.Helper()
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/identity/v3",
		Username:         user,
		Password:         password,
		DomainID:         identity.DefaultDomainID,
		TenantID:         projectID,
	})
	if err != nil {
		t.Fatalf("gophercloud authentication: %v", err)
	}
	client, err := openstack.NewNetworkV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("network client from the catalog: %v", err)
	}
	return client
}

// compatUser makes a member user with a known password and returns its
// name and project.
func compatUser(t testing.TB, e *apiEnv, name string) (string, string) {
	t.Helper()
	project, _ := e.user(name, "member")
	return name, project
}

func TestCompatGophercloudClassicTopology(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	admin := compatNetworkClient(t, e, "admin", apiAdminPassword, e.boot.AdminProject)
	if admin.ResourceBase != e.base+"/v2.0/" {
		t.Errorf("resource base %q, want %q", admin.ResourceBase, e.base+"/v2.0/")
	}
	yes, no := true, false

	// The external network and its subnet, as admin.
	var ext struct {
		networks.Network
		external.NetworkExternalExt
		provider.NetworkProviderExt
	}
	err := networks.Create(ctx, admin, external.CreateOptsExt{
		CreateOptsBuilder: networks.CreateOpts{Name: "public", AdminStateUp: &yes},
		External:          &yes,
	}).ExtractInto(&ext)
	if err != nil {
		t.Fatalf("create external network: %v", err)
	}
	if !ext.External || ext.Name != "public" || ext.NetworkType != "vxlan" || ext.SegmentationID == "" || ext.CreatedAt.IsZero() {
		t.Errorf("external network %+v", ext)
	}
	gw := "198.51.100.1"
	extSn, err := subnets.Create(ctx, admin, subnets.CreateOpts{
		NetworkID: ext.ID, CIDR: "198.51.100.0/24", IPVersion: gophercloud.IPv4, GatewayIP: &gw, EnableDHCP: &no,
		AllocationPools: []subnets.AllocationPool{{Start: "198.51.100.10", End: "198.51.100.100"}},
	}).Extract()
	if err != nil {
		t.Fatalf("create external subnet: %v", err)
	}
	if extSn.CIDR != "198.51.100.0/24" || extSn.GatewayIP != gw || extSn.EnableDHCP || len(extSn.AllocationPools) != 1 {
		t.Errorf("external subnet %+v", extSn)
	}

	// Everything else as a project member.
	user, project := compatUser(t, e, "gopher")
	client := compatNetworkClient(t, e, user, user+"-password", project)
	var listed []networks.Network
	err = networks.List(client, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &yes}).
		EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			ns, err := networks.ExtractNetworks(p)
			listed = append(listed, ns...)
			return true, err
		})
	if err != nil || len(listed) != 1 || listed[0].ID != ext.ID {
		t.Fatalf("member lists external networks: %+v, %v", listed, err)
	}
	priv, err := networks.Create(ctx, client, networks.CreateOpts{Name: "private"}).Extract()
	if err != nil {
		t.Fatalf("create private network: %v", err)
	}
	sn, err := subnets.Create(ctx, client, subnets.CreateOpts{
		NetworkID: priv.ID, Name: "private-v4", CIDR: "10.10.0.0/24", IPVersion: gophercloud.IPv4,
		DNSNameservers: []string{"9.9.9.9"},
	}).Extract()
	if err != nil {
		t.Fatalf("create private subnet: %v", err)
	}
	if sn.GatewayIP != "10.10.0.1" || !sn.EnableDHCP || sn.DNSNameservers[0] != "9.9.9.9" || sn.TenantID != project {
		t.Errorf("private subnet %+v", sn)
	}
	_, err = subnets.Create(ctx, client, subnets.CreateOpts{NetworkID: priv.ID, CIDR: "10.10.0.128/25", IPVersion: gophercloud.IPv4}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("overlapping subnet: %v, want a 400", err)
	}

	// Router with a gateway and an interface.
	r, err := routers.Create(ctx, client, routers.CreateOpts{Name: "edge", GatewayInfo: &routers.GatewayInfo{NetworkID: ext.ID}}).Extract()
	if err != nil {
		t.Fatalf("create router: %v", err)
	}
	if r.GatewayInfo.NetworkID != ext.ID || r.GatewayInfo.EnableSNAT == nil || !*r.GatewayInfo.EnableSNAT ||
		len(r.GatewayInfo.ExternalFixedIPs) != 1 || r.GatewayInfo.ExternalFixedIPs[0].IPAddress != "198.51.100.10" {
		t.Errorf("router %+v", r)
	}
	iface, err := routers.AddInterface(ctx, client, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	if err != nil {
		t.Fatalf("add router interface: %v", err)
	}
	if iface.SubnetID != sn.ID || iface.ID != r.ID || iface.PortID == "" {
		t.Errorf("interface %+v", iface)
	}

	// Security group with a rule, and a port in it.
	sg, err := groups.Create(ctx, client, groups.CreateOpts{Name: "web", Description: "web servers"}).Extract()
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	rule, err := rules.Create(ctx, client, rules.CreateOpts{
		Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: sg.ID, Protocol: rules.ProtocolTCP,
		PortRangeMin: 443, PortRangeMax: 443, RemoteIPPrefix: "0.0.0.0/0",
	}).Extract()
	if err != nil {
		t.Fatalf("create rule: %v", err)
	}
	if rule.Protocol != "tcp" || rule.PortRangeMin != 443 || rule.SecGroupID != sg.ID {
		t.Errorf("rule %+v", rule)
	}
	_, err = rules.Create(ctx, client, rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: sg.ID,
		Protocol: rules.ProtocolTCP, PortRangeMin: 443, PortRangeMax: 80}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("bad port range: %v, want a 400", err)
	}
	port, err := ports.Create(ctx, client, ports.CreateOpts{
		NetworkID: priv.ID, Name: "vm0", FixedIPs: []ports.IP{{SubnetID: sn.ID}}, SecurityGroups: &[]string{sg.ID},
	}).Extract()
	if err != nil {
		t.Fatalf("create port: %v", err)
	}
	if len(port.FixedIPs) != 1 || port.FixedIPs[0].SubnetID != sn.ID || port.MACAddress == "" || len(port.SecurityGroups) != 1 ||
		port.SecurityGroups[0] != sg.ID || port.Status != "DOWN" {
		t.Errorf("port %+v", port)
	}

	// The floating IP, associated with the port through the router.
	fip, err := floatingips.Create(ctx, client, floatingips.CreateOpts{FloatingNetworkID: ext.ID, PortID: port.ID}).Extract()
	if err != nil {
		t.Fatalf("create floating ip: %v", err)
	}
	if fip.PortID != port.ID || fip.FixedIP != port.FixedIPs[0].IPAddress || fip.RouterID != r.ID || fip.FloatingIP == "" {
		t.Errorf("floating ip %+v", fip)
	}
	all, err := floatingips.List(client, floatingips.ListOpts{PortID: port.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs, _ := floatingips.ExtractFloatingIPs(all); len(fs) != 1 || fs[0].ID != fip.ID {
		t.Errorf("floating ips of the port: %+v", fs)
	}
	ps, err := ports.List(client, ports.ListOpts{NetworkID: priv.ID, DeviceOwner: "network:router_interface"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pl, _ := ports.ExtractPorts(ps); len(pl) != 1 || pl[0].ID != iface.PortID {
		t.Errorf("router interface ports %+v", pl)
	}
	_, err = networks.Get(ctx, client, "no-such-network").Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("missing network: %v, want a 404", err)
	}

	// Tear down in order; the router cannot go while it has an interface.
	if err := routers.Delete(ctx, client, r.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("delete router in use: %v, want a 409", err)
	}
	if err := floatingips.Delete(ctx, client, fip.ID).ExtractErr(); err != nil {
		t.Errorf("delete floating ip: %v", err)
	}
	if err := ports.Delete(ctx, client, port.ID).ExtractErr(); err != nil {
		t.Errorf("delete port: %v", err)
	}
	if _, err := routers.RemoveInterface(ctx, client, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract(); err != nil {
		t.Errorf("remove interface: %v", err)
	}
	if err := routers.Delete(ctx, client, r.ID).ExtractErr(); err != nil {
		t.Errorf("delete router: %v", err)
	}
	if err := groups.Delete(ctx, client, sg.ID).ExtractErr(); err != nil {
		t.Errorf("delete group: %v", err)
	}
	if err := networks.Delete(ctx, client, priv.ID).ExtractErr(); err != nil {
		t.Errorf("delete private network: %v", err)
	}
	if err := networks.Delete(ctx, admin, ext.ID).ExtractErr(); err != nil {
		t.Errorf("delete external network: %v", err)
	}
}

// BenchmarkClassicTopology measures creating a network, a subnet, a router
// with a gateway and an interface, a port and an associated floating IP
// through the REST API with gophercloud.
func BenchmarkClassicTopology(b *testing.B) {
	e := newAPIEnv(b)
	ctx := context.Background()
	admin := compatNetworkClient(b, e, "admin", apiAdminPassword, e.boot.AdminProject)
	yes := true
	ext, err := networks.Create(ctx, admin, external.CreateOptsExt{
		CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: &yes}).Extract()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: ext.ID, CIDR: "100.64.0.0/10",
		IPVersion: gophercloud.IPv4}).Extract(); err != nil {
		b.Fatal(err)
	}
	// Generous limits: every iteration keeps what it made.
	if _, err := e.net.UpdateQuota(e.adminCtx, e.boot.AdminProject, map[string]int{"network": -1, "subnet": -1, "port": -1,
		"router": -1, "floatingip": -1}, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "bench"}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		sn, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.0.0.0/24", IPVersion: gophercloud.IPv4}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		r, err := routers.Create(ctx, admin, routers.CreateOpts{Name: "bench", GatewayInfo: &routers.GatewayInfo{NetworkID: ext.ID}}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := routers.AddInterface(ctx, admin, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract(); err != nil {
			b.Fatal(err)
		}
		p, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: n.ID}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := floatingips.Create(ctx, admin, floatingips.CreateOpts{FloatingNetworkID: ext.ID, PortID: p.ID}).Extract(); err != nil {
			b.Fatal(err)
		}
	}
}
