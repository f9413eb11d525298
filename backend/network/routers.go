package network

import (
	"context"
	"net/netip"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

// GatewayRequest sets a router's gateway: the external network, whether to
// SNAT (true when nil; admins only), and the gateway's addresses (nil for
// automatic; admins only).
type GatewayRequest struct {
	NetworkID        string
	EnableSNAT       *bool
	ExternalFixedIPs []FixedIPRequest
}

// RouterCreate is a new router.
type RouterCreate struct {
	ProjectID    string
	Name         string
	Description  string
	AdminStateUp *bool
	Gateway      *GatewayRequest
}

// RouterUpdate changes the non-nil attributes of a router. With
// SetGateway, Gateway replaces the gateway, nil removing it.
type RouterUpdate struct {
	Name         *string
	Description  *string
	AdminStateUp *bool
	SetGateway   bool
	Gateway      *GatewayRequest
	Routes       *[]Route
}

// visibleRouter loads a router of the caller's project (any for an
// admin), or answers RouterNotFound.
func (s *Service) visibleRouter(x *q, c *auth.Credentials, id string) (*Router, error) {
	r, err := x.router(id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeOwned(c, r.ProjectID, "get_router") {
		return nil, errRouterNotFound(id)
	}
	return r, nil
}

// GetRouter returns a router of the caller's project. Faults: Unauthorized, NotFound.
func (s *Service) GetRouter(ctx context.Context, id string) (*Router, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleRouter(s.st.read(ctx), c, id)
}

// ListRouters lists the caller's routers (all for an admin) that match o.
// Faults: Unauthorized, Invalid, NotFound (marker).
func (s *Service) ListRouters(ctx context.Context, o ListOptions) ([]Router, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	return listOwned(s, s.st.read(ctx), c, routerSpec, o, (*q).routers,
		func(x *Router) string { return x.ProjectID }, "get_router")
}

// CreateRouter creates a router, with its gateway port (device_owner
// network:router_gateway) on the external network when a gateway is
// given. Faults: Unauthorized, Forbidden, NotFound (network), Invalid (not
// external), Conflict (OverQuota, addresses).
func (s *Service) CreateRouter(ctx context.Context, in RouterCreate) (*Router, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := s.enforce(c, "create_router", ownedTarget(project)); err != nil {
		return nil, err
	}
	if err := checkText("name", in.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkText("description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	now := s.now()
	r := &Router{
		ID: newID(), ProjectID: project, Name: in.Name, Description: in.Description, AdminStateUp: true,
		Status: StatusActive, Routes: []Route{}, RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
	}
	if in.AdminStateUp != nil {
		r.AdminStateUp = *in.AdminStateUp
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		if err := s.checkQuota(x, project, "router", 1); err != nil {
			return err
		}
		if err := x.insertRouter(r); err != nil {
			return err
		}
		if in.Gateway != nil {
			gev, err := s.setGateway(x, c, r, in.Gateway, "create_router")
			if err != nil {
				return err
			}
			evs = gev
			return x.updateRouter(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.RouterChanged(ctx, OpCreate, r) })
	s.fire(ctx, evs)
	return r, nil
}

// setGateway points r's gateway at req (nil removes it), replacing the
// gateway port when the network or the requested addresses change. A
// gateway that floating IPs depend on cannot move or go.
func (s *Service) setGateway(x *q, c *auth.Credentials, r *Router, req *GatewayRequest, action string) ([]event, error) {
	t := ownedTarget(r.ProjectID)
	if err := s.enforce(c, action+":external_gateway_info", t); err != nil {
		return nil, err
	}
	var evs []event
	moving := req == nil || r.Gateway == nil || req.NetworkID != r.Gateway.NetworkID || req.ExternalFixedIPs != nil
	if req != nil {
		checks := []attrCheck{
			{req.EnableSNAT != nil && !*req.EnableSNAT, action + ":external_gateway_info:enable_snat"},
			{req.ExternalFixedIPs != nil, action + ":external_gateway_info:external_fixed_ips"},
		}
		if err := s.attrChecks(c, t, checks); err != nil {
			return nil, err
		}
	}
	if r.Gateway != nil && moving {
		if req == nil || req.NetworkID != r.Gateway.NetworkID {
			if k, err := x.routerFloatingIPs(r.ID); err != nil {
				return nil, err
			} else if k > 0 {
				return nil, fault409("RouterExternalGatewayInUseByFloatingIp", "Gateway cannot be updated for router %s, "+
					"since a gateway to external network %s is required by one or more floating IPs.", r.ID, r.Gateway.NetworkID)
			}
		}
		if r.gwPortID != "" {
			old, err := x.port(r.gwPortID)
			if err != nil {
				return nil, err
			}
			// Detach first: the router row references the port.
			oldGW := r.Gateway
			r.Gateway, r.gwPortID = nil, ""
			if err := x.updateRouter(r); err != nil {
				return nil, err
			}
			r.Gateway = oldGW
			if err := x.deletePort(old.ID); err != nil {
				return nil, err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, old) })
		}
	}
	if req == nil {
		r.Gateway, r.gwPortID = nil, ""
		return evs, nil
	}
	n, err := s.visibleNetwork(x, c, req.NetworkID)
	if err != nil {
		return nil, err
	}
	if !n.External {
		return nil, badRequest("router", "Network %s is not an external network", n.ID)
	}
	snat := true
	if r.Gateway != nil && !moving {
		snat = r.Gateway.EnableSNAT
	}
	if req.EnableSNAT != nil {
		snat = *req.EnableSNAT
	}
	if !moving {
		r.Gateway.EnableSNAT = snat
		return evs, nil
	}
	subnets, err := x.subnetsOf(n.ID)
	if err != nil {
		return nil, err
	}
	var wants []ipWant
	if req.ExternalFixedIPs == nil {
		if len(subnets) == 0 {
			return nil, fault400("ExternalIpAddressExhausted", "Unable to find any IP address on external network %s.", n.ID)
		}
		wants, err = x.autoWants(n.ID, subnets)
	} else {
		wants, err = resolveFixedIPs(n.ID, subnets, req.ExternalFixedIPs, OwnerRouterGateway)
	}
	if err != nil {
		return nil, err
	}
	p, err := s.newServicePort(x, n, "", OwnerRouterGateway, r.ID)
	if err != nil {
		return nil, err
	}
	fixed, err := x.allocate(p, wants, nil)
	if err != nil {
		return nil, err
	}
	if err := x.storeAllocations(p, nil, fixed); err != nil {
		return nil, err
	}
	r.Gateway = &GatewayInfo{NetworkID: n.ID, EnableSNAT: snat, ExternalFixedIPs: p.FixedIPs}
	r.gwPortID = p.ID
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpCreate, p) })
	return evs, nil
}

// newServicePort inserts a port the networking service owns (a router's
// or a floating IP's) without addresses; the caller allocates them.
func (s *Service) newServicePort(x *q, n *Network, project, owner, deviceID string) (*Port, error) {
	mac, err := x.uniqueMAC(n.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	p := &Port{
		ID: newID(), NetworkID: n.ID, ProjectID: project, MACAddress: mac, AdminStateUp: true, Status: StatusDown,
		DeviceID: deviceID, DeviceOwner: owner, PortSecurityEnabled: false, BindingVNICType: VNICNormal,
		BindingProfile: map[string]any{}, FixedIPs: []FixedIP{}, SecurityGroups: []string{},
		AllowedAddressPairs: []AddressPair{}, RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
	}
	p.BindingVIFType = vifType(p)
	return p, x.insertPort(p)
}

// UpdateRouter changes a router's name, state, gateway and extra routes.
// Each route's next hop must be on a subnet the router is attached to
// (and not the router's own address). Faults: Unauthorized, Forbidden,
// NotFound, Invalid (InvalidRoutes, RoutesExhausted, not external),
// Conflict (RouterExternalGatewayInUseByFloatingIp).
func (s *Service) UpdateRouter(ctx context.Context, id string, u RouterUpdate) (*Router, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPtrText("name", u.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkPtrText("description", u.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	var r *Router
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if r, err = s.visibleRouter(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "update_router", ownedTarget(r.ProjectID)); err != nil {
			return err
		}
		if u.Name != nil {
			r.Name = *u.Name
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		if u.AdminStateUp != nil {
			r.AdminStateUp = *u.AdminStateUp
		}
		if u.SetGateway {
			if evs, err = s.setGateway(x, c, r, u.Gateway, "update_router"); err != nil {
				return err
			}
		}
		if u.Routes != nil {
			if r.Routes, err = s.checkRoutes(x, r, *u.Routes); err != nil {
				return err
			}
		}
		r.RevisionNumber++
		r.UpdatedAt = s.now()
		return x.updateRouter(r)
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.RouterChanged(ctx, OpUpdate, r) })
	s.fire(ctx, evs)
	return r, nil
}

// checkRoutes validates extra routes against the subnets r is attached to.
func (s *Service) checkRoutes(x *q, r *Router, in []Route) ([]Route, error) {
	if len(in) > s.cfg.MaxRoutes {
		return nil, fault400("RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.",
			r.ID, s.cfg.MaxRoutes)
	}
	prefixes, own, err := s.routerSubnets(x, r)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(in))
	seen := map[Route]bool{}
	for _, rt := range in {
		bad := func(reason string) error {
			return fault400("InvalidRoutes", "Invalid format for routes: [{'destination': '%s', 'nexthop': '%s'}], %s",
				rt.Destination, rt.NextHop, reason)
		}
		d, ok := parseAnyPrefix(rt.Destination, false)
		if !ok {
			return nil, bad("the destination is not a valid CIDR")
		}
		nh, ok := parseAddr(rt.NextHop)
		if !ok {
			return nil, bad("the nexthop is not a valid IP address")
		}
		if d.Addr().Is4() != nh.Is4() {
			return nil, bad("the destination and nexthop are of different IP versions")
		}
		if own[nh] {
			return nil, bad("the nexthop is used by router")
		}
		connected := false
		for _, p := range prefixes {
			if p.Contains(nh) {
				connected = true
			}
		}
		if !connected {
			return nil, bad("the nexthop is not connected with router")
		}
		v := Route{Destination: d.String(), NextHop: nh.String()}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// routerSubnets returns the CIDRs of the subnets r has a leg on (its
// interfaces and its gateway) and r's own addresses there.
func (s *Service) routerSubnets(x *q, r *Router) ([]netip.Prefix, map[netip.Addr]bool, error) {
	ports, err := x.routerInterfaces(r.ID)
	if err != nil {
		return nil, nil, err
	}
	var fixed []FixedIP
	for _, p := range ports {
		fixed = append(fixed, p.FixedIPs...)
	}
	if r.Gateway != nil {
		fixed = append(fixed, r.Gateway.ExternalFixedIPs...)
	}
	own := map[netip.Addr]bool{}
	var ids []string
	for _, f := range fixed {
		if a, ok := parseAddr(f.IPAddress); ok {
			own[a] = true
		}
		ids = append(ids, f.SubnetID)
	}
	sns, err := x.subnets(ids)
	if err != nil {
		return nil, nil, err
	}
	prefixes := make([]netip.Prefix, 0, len(sns))
	for _, sn := range sns {
		prefixes = append(prefixes, mustPrefix(sn.CIDR))
	}
	return prefixes, own, nil
}

// DeleteRouter deletes a router with no interfaces, and its gateway port.
// Faults: Unauthorized, Forbidden, NotFound, Conflict (RouterInUse).
func (s *Service) DeleteRouter(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var r *Router
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if r, err = s.visibleRouter(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "delete_router", ownedTarget(r.ProjectID)); err != nil {
			return err
		}
		ifaces, err := x.routerInterfaces(id)
		if err != nil {
			return err
		}
		if len(ifaces) > 0 {
			return errRouterInUse(id)
		}
		if k, err := x.routerFloatingIPs(id); err != nil {
			return err
		} else if k > 0 {
			return errRouterInUse(id)
		}
		if err := x.deleteRouter(id); err != nil {
			return err
		}
		if r.gwPortID != "" {
			gw, err := x.port(r.gwPortID)
			if err != nil {
				return err
			}
			if err := x.deletePort(gw.ID); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, gw) })
		}
		return nil
	})
	if err != nil {
		return err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.RouterChanged(ctx, OpDelete, r) })
	s.fire(ctx, evs)
	return nil
}
