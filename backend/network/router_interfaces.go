package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

// AddRouterInterface attaches a subnet or an existing port to a router.
// By subnet, a port (device_owner network:router_interface) is made with
// the subnet's gateway address; by port, an unused port of the router's
// project becomes the interface. Exactly one of subnetID and portID is
// given. Faults: Unauthorized, Forbidden, NotFound (router, subnet, port),
// Invalid (no gateway, already attached, overlapping CIDRs), Conflict
// (PortInUse, the gateway address held by another port).
func (s *Service) AddRouterInterface(ctx context.Context, routerID, subnetID, portID string) (*RouterInterface, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if (subnetID == "") == (portID == "") {
		if subnetID != "" {
			return nil, badRequest("router", "Cannot specify both subnet-id and port-id")
		}
		return nil, badRequest("router", "Either subnet_id or port_id must be specified")
	}
	var out *RouterInterface
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		r, err := s.visibleRouter(x, c, routerID)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "add_router_interface", ownedTarget(r.ProjectID)); err != nil {
			return err
		}
		ifaces, err := x.routerInterfaces(r.ID)
		if err != nil {
			return err
		}
		var p *Port
		op := OpUpdate
		if subnetID != "" {
			sn, n, err := s.visibleSubnet(x, c, subnetID)
			if err != nil {
				return err
			}
			if sn.GatewayIP == "" {
				return badRequest("router", "Subnet for router interface must have a gateway IP")
			}
			if err := checkAttachable(x, r, ifaces, []string{sn.ID}); err != nil {
				return err
			}
			if p, err = s.newServicePort(x, n, sn.ProjectID, OwnerRouterInterface, r.ID); err != nil {
				return err
			}
			gw, _ := parseAddr(sn.GatewayIP)
			fixed, err := x.allocate(p, []ipWant{{sn: sn, addr: gw}}, nil)
			if err != nil {
				return err
			}
			if err := x.storeAllocations(p, nil, fixed); err != nil {
				return err
			}
			p.PortSecurityEnabled = n.PortSecurityEnabled
			op = OpCreate
		} else {
			if p, _, err = s.visiblePort(x, c, portID); err != nil {
				return err
			}
			if p.DeviceID != "" || p.DeviceOwner != "" {
				return errPortInUse(p.ID, p.NetworkID, p.DeviceID)
			}
			if !s.isAdmin(c) && p.ProjectID != r.ProjectID {
				return badRequest("router", "Cannot add interface to router %s: port %s belongs to another project", r.ID, p.ID)
			}
			if len(p.FixedIPs) == 0 {
				return badRequest("router", "Router port must have at least one fixed IP")
			}
			var sids []string
			for _, f := range p.FixedIPs {
				sids = append(sids, f.SubnetID)
			}
			if err := checkAttachable(x, r, ifaces, sids); err != nil {
				return err
			}
			p.DeviceID, p.DeviceOwner, p.SecurityGroups = r.ID, OwnerRouterInterface, []string{}
			p.RevisionNumber++
			p.UpdatedAt = s.now()
		}
		if err := x.updatePort(p); err != nil {
			return err
		}
		if err := x.setPortSecurityGroups(p.ID, nil); err != nil {
			return err
		}
		out = interfaceInfo(r, p)
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, op, p) },
			func(ctx context.Context, nt Notifier) { nt.RouterChanged(ctx, OpUpdate, r) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, evs)
	return out, nil
}

// checkAttachable refuses subnets the router is already on, or whose CIDR
// overlaps one it is on.
func checkAttachable(x *q, r *Router, ifaces []Port, subnetIDs []string) error {
	var attached []string
	for _, p := range ifaces {
		for _, f := range p.FixedIPs {
			if slices.Contains(subnetIDs, f.SubnetID) {
				return badRequest("router", "Router already has a port on subnet %s", f.SubnetID)
			}
			attached = append(attached, f.SubnetID)
		}
	}
	olds, err := x.subnets(attached)
	if err != nil {
		return err
	}
	news, err := x.subnets(subnetIDs)
	if err != nil {
		return err
	}
	for _, nsn := range news {
		np := netip.MustParsePrefix(nsn.CIDR)
		for _, o := range olds {
			if netip.MustParsePrefix(o.CIDR).Overlaps(np) {
				return badRequest("router", "Cidr %s of subnet %s overlaps with cidr %s of subnet %s",
					nsn.CIDR, nsn.ID, o.CIDR, o.ID)
			}
		}
	}
	return nil
}

func interfaceInfo(r *Router, p *Port) *RouterInterface {
	ri := &RouterInterface{RouterID: r.ID, ProjectID: r.ProjectID, PortID: p.ID, NetworkID: p.NetworkID, SubnetIDs: []string{}}
	for _, f := range p.FixedIPs {
		if !slices.Contains(ri.SubnetIDs, f.SubnetID) {
			ri.SubnetIDs = append(ri.SubnetIDs, f.SubnetID)
		}
	}
	if len(ri.SubnetIDs) > 0 {
		ri.SubnetID = ri.SubnetIDs[0]
	}
	return ri
}

// RemoveRouterInterface detaches a subnet or an interface port from a
// router and deletes the interface port (or, when it has addresses on
// other subnets too, releases only the one on subnetID). An interface that
// floating IPs or extra routes depend on stays. Faults: Unauthorized,
// Forbidden, NotFound (router, RouterInterfaceNotFound,
// RouterInterfaceNotFoundForSubnet), Invalid, Conflict
// (RouterInterfaceInUseByFloatingIP, RouterInterfaceInUseByRoute).
func (s *Service) RemoveRouterInterface(ctx context.Context, routerID, subnetID, portID string) (*RouterInterface, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if subnetID == "" && portID == "" {
		return nil, badRequest("router", "Either subnet_id or port_id must be specified")
	}
	var out *RouterInterface
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		r, err := s.visibleRouter(x, c, routerID)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "remove_router_interface", ownedTarget(r.ProjectID)); err != nil {
			return err
		}
		ifaces, err := x.routerInterfaces(r.ID)
		if err != nil {
			return err
		}
		var p *Port
		for i := range ifaces {
			onSubnet := subnetID == ""
			for _, f := range ifaces[i].FixedIPs {
				if f.SubnetID == subnetID {
					onSubnet = true
				}
			}
			if (portID == "" || ifaces[i].ID == portID) && onSubnet {
				p = &ifaces[i]
				break
			}
		}
		if p == nil {
			if portID != "" {
				if subnetID != "" && slices.ContainsFunc(ifaces, func(ip Port) bool { return ip.ID == portID }) {
					return fault400("SubnetMismatchForPort", "Subnet on port %s does not match the requested subnet %s.", portID, subnetID)
				}
				return notFoundType("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", r.ID, portID)
			}
			return notFoundType("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", r.ID, subnetID)
		}
		var leaving, staying []FixedIP
		for _, f := range p.FixedIPs {
			if subnetID == "" || f.SubnetID == subnetID {
				leaving = append(leaving, f)
			} else {
				staying = append(staying, f)
			}
		}
		var sids []string
		for _, f := range leaving {
			sids = append(sids, f.SubnetID)
		}
		if k, err := x.floatingIPsViaSubnets(r.ID, sids); err != nil {
			return err
		} else if k > 0 {
			return fault409("RouterInterfaceInUseByFloatingIP", "Router interface for subnet %s on router %s cannot be deleted, "+
				"as it is required by one or more floating IPs.", sids[0], r.ID)
		}
		if err := checkRoutesKeepNexthop(x, r, sids); err != nil {
			return err
		}
		out = interfaceInfo(r, p)
		if len(staying) == 0 {
			if err := x.deletePort(p.ID); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, p) })
		} else {
			out.SubnetID, out.SubnetIDs = sids[0], sids
			if err := x.storeAllocations(p, p.FixedIPs, staying); err != nil {
				return err
			}
			p.RevisionNumber++
			p.UpdatedAt = s.now()
			if err := x.updatePort(p); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpUpdate, p) })
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.RouterChanged(ctx, OpUpdate, r) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, evs)
	return out, nil
}

// checkRoutesKeepNexthop refuses to take a router off subnets that one of
// its extra routes goes through.
func checkRoutesKeepNexthop(x *q, r *Router, subnetIDs []string) error {
	sns, err := x.subnets(subnetIDs)
	if err != nil {
		return err
	}
	for _, sn := range sns {
		p := netip.MustParsePrefix(sn.CIDR)
		for _, rt := range r.Routes {
			if nh, ok := parseAddr(rt.NextHop); ok && p.Contains(nh) {
				return fault409("RouterInterfaceInUseByRoute", "Router interface for subnet %s on router %s cannot be deleted, "+
					"as it is required by one or more routes.", sn.ID, r.ID)
			}
		}
	}
	return nil
}
