package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// instanceInterfaces lists srv's ports for its page: network, addresses
// (fixed and floating), MAC, security groups and status. What the viewer
// may not read is left out, as everywhere.
func (s *Server) instanceInterfaces(r *http.Request, srv *compute.Server) []views.InstanceInterface {
	ctx := r.Context()
	ports, _, err := s.nets.ListPorts(ctx, network.ListOptions{Filters: map[string][]string{"device_id": {srv.ID}}})
	if err != nil || len(ports) == 0 {
		if err != nil {
			s.log.WarnContext(ctx, "instance ports", "instance", srv.ID, "err", err)
		}
		return nil
	}
	ids := make([]string, len(ports))
	for i, p := range ports {
		ids[i] = p.ID
	}
	floating := map[string][]string{}
	if fips, _, err := s.nets.ListFloatingIPs(ctx, network.ListOptions{Filters: map[string][]string{"port_id": ids}}); err == nil {
		for _, f := range fips {
			floating[f.PortID] = append(floating[f.PortID], f.FloatingIPAddress)
		}
	}
	netNames, groupNames := map[string]string{}, map[string]string{}
	if ns, _, err := s.nets.ListNetworks(ctx, network.ListOptions{}); err == nil {
		for _, n := range ns {
			netNames[n.ID] = netLabel(n.Name, n.ID)
		}
	}
	if gs, _, err := s.nets.ListSecurityGroups(ctx, network.ListOptions{Filters: map[string][]string{"project_id": {srv.ProjectID}}}); err == nil {
		for _, g := range gs {
			groupNames[g.ID] = g.Name
		}
	}
	out := make([]views.InstanceInterface, 0, len(ports))
	for i := range ports {
		p := &ports[i]
		in := views.InstanceInterface{PortID: p.ID, NetworkID: p.NetworkID, Network: nameOr(netNames, p.NetworkID),
			MAC: p.MACAddress, Status: p.Status, Fixed: fixedAddresses(p), Floating: floating[p.ID]}
		for _, g := range p.SecurityGroups {
			in.SecurityGroups = append(in.SecurityGroups, nameOr(groupNames, g))
		}
		slices.Sort(in.SecurityGroups)
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b views.InstanceInterface) int { return strings.Compare(a.Network, b.Network) })
	return out
}
