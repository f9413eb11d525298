package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// networkRoutes declares the Project → Network pages; absent without a
// network service.
func (s *Server) networkRoutes(d chi.Router) {
	if s.nets == nil {
		return
	}
	d.Get(views.TopologyURL, s.topologyPage)
	d.Get(views.TopologyURL+"/svg", s.topologySVG)

	d.Get(views.NetworksURL, s.networkList)
	d.Get(views.NetworksURL+"/new", s.networkNew)
	d.Post(views.NetworksURL, s.networkCreate)
	d.Get(views.NetworksURL+"/{id}", s.networkDetail)
	d.Get(views.NetworksURL+"/{id}/subnets/new", s.subnetNew)
	d.Post(views.NetworksURL+"/{id}/subnets", s.subnetCreate)
	d.Get(views.NetworksURL+"/{id}/subnets/{subnet}/edit", s.subnetEdit)
	d.Post(views.NetworksURL+"/{id}/subnets/{subnet}/edit", s.subnetEdit)
	d.Get(views.NetworksURL+"/{id}/subnets/{subnet}/delete", s.subnetDeleteConfirm)
	d.Post(views.NetworksURL+"/{id}/subnets/{subnet}/delete", s.subnetDelete)
	d.Get(views.NetworksURL+"/{id}/edit", s.networkEdit)
	d.Post(views.NetworksURL+"/{id}/edit", s.networkEdit)
	d.Get(views.NetworksURL+"/{id}/delete", s.networkDeleteConfirm)
	d.Post(views.NetworksURL+"/{id}/delete", s.networkDelete)

	d.Get(views.RoutersURL, s.routerList)
	d.Get(views.RoutersURL+"/new", s.routerNew)
	d.Post(views.RoutersURL, s.routerCreate)
	d.Get(views.RoutersURL+"/{id}", s.routerDetail)
	d.Get(views.RoutersURL+"/{id}/edit", s.routerEdit)
	d.Post(views.RoutersURL+"/{id}/edit", s.routerEdit)
	d.Get(views.RoutersURL+"/{id}/delete", s.routerDeleteConfirm)
	d.Post(views.RoutersURL+"/{id}/delete", s.routerDelete)
	d.Post(views.RoutersURL+"/{id}/interfaces", s.routerAddInterface)
	d.Get(views.RoutersURL+"/{id}/interfaces/{port}/remove", s.routerRemoveInterfaceConfirm)
	d.Post(views.RoutersURL+"/{id}/interfaces/{port}/remove", s.routerRemoveInterface)
	d.Get(views.RoutersURL+"/{id}/gateway", s.routerGatewayForm)
	d.Post(views.RoutersURL+"/{id}/gateway", s.routerSetGateway)
	d.Get(views.RoutersURL+"/{id}/gateway/clear", s.routerClearGatewayConfirm)
	d.Post(views.RoutersURL+"/{id}/gateway/clear", s.routerClearGateway)

	d.Get(views.SecurityGroupsURL, s.secGroupList)
	d.Get(views.SecurityGroupsURL+"/new", s.secGroupNew)
	d.Post(views.SecurityGroupsURL, s.secGroupCreate)
	d.Get(views.SecurityGroupsURL+"/{id}", s.secGroupDetail)
	d.Get(views.SecurityGroupsURL+"/{id}/edit", s.secGroupEdit)
	d.Post(views.SecurityGroupsURL+"/{id}/edit", s.secGroupEdit)
	d.Get(views.SecurityGroupsURL+"/{id}/delete", s.secGroupDeleteConfirm)
	d.Post(views.SecurityGroupsURL+"/{id}/delete", s.secGroupDelete)
	d.Post(views.SecurityGroupsURL+"/{id}/rules", s.secGroupRuleCreate)
	d.Post(views.SecurityGroupsURL+"/{id}/rules/preset/{preset}", s.secGroupRulePreset)
	d.Post(views.SecurityGroupsURL+"/{id}/rules/{rule}/delete", s.secGroupRuleDelete)

	d.Get(views.FloatingIPsURL, s.fipList)
	d.Get(views.FloatingIPsURL+"/new", s.fipNew)
	d.Post(views.FloatingIPsURL, s.fipAllocate)
	d.Get(views.FloatingIPsURL+"/{id}/associate", s.fipAssociateForm)
	d.Post(views.FloatingIPsURL+"/{id}/associate", s.fipAssociate)
	d.Post(views.FloatingIPsURL+"/{id}/disassociate", s.fipDisassociate)
	d.Get(views.FloatingIPsURL+"/{id}/delete", s.fipReleaseConfirm)
	d.Post(views.FloatingIPsURL+"/{id}/delete", s.fipRelease)
}

// projectOnly narrows a listing to the viewer's project: admins see every
// project's resources through the service, but the Project pages are about
// one project.
func projectOnly(r *http.Request) network.ListOptions {
	return network.ListOptions{Filters: map[string][]string{"project_id": {viewerFrom(r).ProjectID}}}
}

// usableNetwork reports whether n belongs on the project's pages: its own,
// shared and external networks (an admin's service listing holds more).
func usableNetwork(v *viewer, n *network.Network) bool {
	return n.ProjectID == v.ProjectID || n.Shared || n.External
}

// networkIndex is what the pages look up networks and subnets by.
type networkIndex struct {
	nets    map[string]*network.Network
	subnets map[string]*network.Subnet
	order   []*network.Network // usable networks, external first, then by name
}

// networkIndex lists the networks and subnets the viewer may see.
func (s *Server) networkIndex(r *http.Request) (*networkIndex, error) {
	ctx := r.Context()
	v := viewerFrom(r)
	nets, _, err := s.nets.ListNetworks(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	subs, _, err := s.nets.ListSubnets(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	ix := &networkIndex{nets: map[string]*network.Network{}, subnets: map[string]*network.Subnet{}}
	for i := range nets {
		n := &nets[i]
		ix.nets[n.ID] = n
		if usableNetwork(v, n) {
			ix.order = append(ix.order, n)
		}
	}
	for i := range subs {
		ix.subnets[subs[i].ID] = &subs[i]
	}
	slices.SortStableFunc(ix.order, func(a, b *network.Network) int {
		if a.External != b.External {
			if a.External {
				return -1
			}
			return 1
		}
		return byName(a.Name, b.Name)
	})
	return ix, nil
}

// networkName is a network's name, or its ID when unnamed or unseen.
func (ix *networkIndex) networkName(id string) string {
	if n, ok := ix.nets[id]; ok && n.Name != "" {
		return n.Name
	}
	return id
}

// subnetRows are a network's subnets, oldest first.
func (ix *networkIndex) subnetRows(n *network.Network) []views.SubnetRow {
	var rows []views.SubnetRow
	for _, id := range n.Subnets {
		if sn, ok := ix.subnets[id]; ok {
			rows = append(rows, subnetRow(sn))
		}
	}
	return rows
}

func subnetRow(sn *network.Subnet) views.SubnetRow {
	row := views.SubnetRow{ID: sn.ID, Name: sn.Name, CIDR: sn.CIDR, Gateway: sn.GatewayIP, DHCP: sn.EnableDHCP, DNS: sn.DNSNameservers}
	for _, p := range sn.AllocationPools {
		row.Pools = append(row.Pools, p.Start+" – "+p.End)
	}
	return row
}

// externalOptions are the external networks to choose a gateway or a
// floating IP pool from; none is the label of an empty first choice ("" for
// no such choice).
func (ix *networkIndex) externalOptions(selected, none string) []views.Option {
	var opts []views.Option
	if none != "" {
		opts = append(opts, views.Option{Value: "", Label: none, Selected: selected == ""})
	}
	for _, n := range ix.order {
		if n.External {
			opts = append(opts, views.Option{Value: n.ID, Label: netLabel(n.Name, n.ID), Selected: n.ID == selected})
		}
	}
	return opts
}

func netLabel(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

// instanceNames maps the project's instance IDs to names; without a
// compute service, or when it fails, ports show their device IDs.
func (s *Server) instanceNames(ctx context.Context) map[string]string {
	m := map[string]string{}
	if s.comp == nil {
		return m
	}
	srvs, err := s.comp.ListServers(ctx, compute.ServerFilter{})
	if err != nil {
		s.log.WarnContext(ctx, "list instances for the network pages", "err", err)
		return m
	}
	for _, srv := range srvs {
		m[srv.ID] = netLabel(srv.Name, srv.ID)
	}
	return m
}

// portDevice names what a port is attached to and the page to open it.
func (s *Server) portDevice(p *network.Port, routers map[string]string, instances map[string]string) (string, string) {
	switch {
	case p.DeviceOwner == network.OwnerRouterInterface || p.DeviceOwner == network.OwnerRouterGateway:
		name, ok := routers[p.DeviceID]
		if !ok {
			return "Router " + p.DeviceID, ""
		}
		return "Router " + name, views.Path(views.RoutersURL, p.DeviceID)
	case p.OfInstance():
		name := p.DeviceID
		if n, ok := instances[p.DeviceID]; ok {
			name = n
		}
		if s.comp == nil {
			return "Instance " + name, ""
		}
		return "Instance " + name, views.Path(views.InstancesURL, p.DeviceID)
	case p.DeviceOwner == network.OwnerDHCP:
		return "DHCP server", ""
	case p.DeviceOwner == network.OwnerFloatingIP:
		return "Floating IP", ""
	case p.DeviceID != "":
		return p.DeviceID, ""
	}
	return "Nothing", ""
}

func fixedAddresses(p *network.Port) []string {
	out := make([]string, 0, len(p.FixedIPs))
	for _, ip := range p.FixedIPs {
		out = append(out, ip.IPAddress)
	}
	return out
}

// inWords rewords a policy refusal for the dashboard: the service says
// "(rule:delete_network) is disallowed by policy", which names an API rule
// rather than what the user tried. The cause stays for the log.
func inWords(err error, action string) error {
	if fault.Is(err, fault.Forbidden) {
		return fault.Wrap(fault.Forbidden, err, "Your role in this project does not allow you to "+action+". Ask a project member or an administrator.")
	}
	return err
}
