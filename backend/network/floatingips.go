package network

import (
	"context"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

// FloatingIPCreate allocates a floating IP from an external network,
// optionally from one subnet or at one address (admins only), and
// optionally associates it with a port at once.
type FloatingIPCreate struct {
	ProjectID         string
	FloatingNetworkID string
	SubnetID          string
	FloatingIPAddress string
	PortID            string
	FixedIPAddress    string
	Description       string
}

// FloatingIPUpdate changes a floating IP. With SetPort, PortID (and
// FixedIPAddress when the port has several IPv4 addresses) associates it,
// and PortID "" disassociates it.
type FloatingIPUpdate struct {
	SetPort        bool
	PortID         string
	FixedIPAddress string
	Description    *string
}

// visibleFloatingIP loads a floating IP of the caller's project (any for
// an admin), or answers FloatingIPNotFound.
func (s *Service) visibleFloatingIP(x *q, c *auth.Credentials, id string) (*FloatingIP, error) {
	f, err := x.floatingIP(id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeOwned(c, f.ProjectID, "get_floatingip") {
		return nil, errFloatingIPNotFound(id)
	}
	return f, nil
}

// GetFloatingIP returns a floating IP of the caller's project.
// Faults: Unauthorized, NotFound.
func (s *Service) GetFloatingIP(ctx context.Context, id string) (*FloatingIP, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleFloatingIP(s.st.read(ctx), c, id)
}

// ListFloatingIPs lists the caller's floating IPs (all for an admin) that
// match o. Faults: Unauthorized, Invalid, NotFound (marker).
func (s *Service) ListFloatingIPs(ctx context.Context, o ListOptions) ([]FloatingIP, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	return listOwned(s, s.st.read(ctx), c, fipSpec, o, (*q).floatingIPs,
		func(x *FloatingIP) string { return x.ProjectID }, "get_floatingip")
}

// CreateFloatingIP allocates an address of an external network's IPv4
// subnets to the caller's project, held by a port with device_owner
// network:floatingip, and associates it when PortID is set. Faults:
// Unauthorized, Forbidden, NotFound (network, port,
// ExternalGatewayForFloatingIPNotFound), Invalid (not external, no
// address), Conflict (OverQuota, IpAddressAlreadyAllocated,
// IpAddressGenerationFailure, FloatingIPPortAlreadyAssociated).
func (s *Service) CreateFloatingIP(ctx context.Context, in FloatingIPCreate) (*FloatingIP, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	t := ownedTarget(project)
	if err := s.enforce(c, "create_floatingip", t); err != nil {
		return nil, err
	}
	if in.FloatingIPAddress != "" {
		if err := s.enforce(c, "create_floatingip:floating_ip_address", t); err != nil {
			return nil, err
		}
	}
	if err := checkText("description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	now := s.now()
	f := &FloatingIP{ID: newID(), ProjectID: project, Status: StatusDown, Description: in.Description,
		RevisionNumber: 1, CreatedAt: now, UpdatedAt: now}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		n, err := s.visibleNetwork(x, c, in.FloatingNetworkID)
		if err != nil {
			return err
		}
		if !n.External {
			return badRequest("floatingip", "Network %s is not a valid external network", n.ID)
		}
		f.FloatingNetworkID = n.ID
		if err := s.checkQuota(x, project, "floatingip", 1); err != nil {
			return err
		}
		all, err := x.subnetsOf(n.ID)
		if err != nil {
			return err
		}
		var v4 []Subnet
		for _, sn := range all {
			if sn.IPVersion == 4 {
				v4 = append(v4, sn)
			}
		}
		if len(v4) == 0 {
			return badRequest("floatingip", "Network %s does not contain any IPv4 subnet", n.ID)
		}
		var wants []ipWant
		if in.SubnetID != "" || in.FloatingIPAddress != "" {
			wants, err = resolveFixedIPs(n.ID, v4, []FixedIPRequest{{SubnetID: in.SubnetID, IPAddress: in.FloatingIPAddress}},
				OwnerFloatingIP)
		} else {
			wants, err = x.autoWants(n.ID, v4)
		}
		if err != nil {
			return err
		}
		p, err := s.newServicePort(x, n, "", OwnerFloatingIP, f.ID)
		if err != nil {
			return err
		}
		fixed, err := x.allocate(p, wants, nil)
		if err != nil {
			return err
		}
		if err := x.storeAllocations(p, nil, fixed); err != nil {
			return err
		}
		f.FloatingIPAddress, f.floatingPortID = fixed[0].IPAddress, p.ID
		if in.PortID != "" {
			if err := s.associate(x, c, f, in.PortID, in.FixedIPAddress); err != nil {
				return err
			}
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpCreate, p) })
		return x.insertFloatingIP(f)
	})
	if err != nil {
		return nil, err
	}
	evs = append(evs, func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpCreate, f) })
	s.fire(ctx, evs)
	return f, nil
}

// associate maps f to one of the port's IPv4 addresses, through the router
// that connects the address's subnet to f's external network.
func (s *Service) associate(x *q, c *auth.Credentials, f *FloatingIP, portID, fixedIP string) error {
	p, _, err := s.visiblePort(x, c, portID)
	if err != nil {
		return err
	}
	if p.ProjectID != f.ProjectID && !s.isAdmin(c) {
		return badRequest("floatingip", "Cannot create floating IP and bind it to Port %s, since that port is owned by a different tenant", p.ID)
	}
	if isNetworkDevice(p.DeviceOwner) {
		return badRequest("floatingip", "Port %s has owner %s and therefore cannot be associated with a floating IP", p.ID, p.DeviceOwner)
	}
	var v4 []FixedIP
	for _, fi := range p.FixedIPs {
		if a, ok := parseAddr(fi.IPAddress); ok && a.Is4() {
			v4 = append(v4, fi)
		}
	}
	var chosen *FixedIP
	switch {
	case fixedIP != "":
		a, ok := parseAddr(fixedIP)
		for i := range v4 {
			if ok && v4[i].IPAddress == a.String() {
				chosen = &v4[i]
			}
		}
		if chosen == nil {
			return badRequest("floatingip", "Port %s does not have fixed ip %s", p.ID, fixedIP)
		}
	case len(v4) == 0:
		return badRequest("floatingip", "No IPv4 addresses found on port %s", p.ID)
	case len(v4) > 1:
		return badRequest("floatingip", "Port %s has multiple fixed IPv4 addresses. Must provide a specific IPv4 address "+
			"when assigning a floating IP", p.ID)
	default:
		chosen = &v4[0]
	}
	routerID, err := x.routerReaching(f.FloatingNetworkID, chosen.SubnetID)
	if err != nil {
		return err
	}
	if routerID == "" {
		return notFoundType("ExternalGatewayForFloatingIPNotFound", "External network %s is not reachable from subnet %s.  "+
			"Therefore, cannot associate Port %s with a Floating IP.", f.FloatingNetworkID, chosen.SubnetID, p.ID)
	}
	others, err := x.floatingIPsOnFixed(f.FloatingNetworkID, p.ID, chosen.IPAddress, f.ID)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return errFIPPortAssociated(&others[0], p.ID, chosen.IPAddress)
	}
	f.PortID, f.FixedIPAddress, f.RouterID = p.ID, chosen.IPAddress, routerID
	return nil
}

// disassociate unmaps f and stores it.
func (s *Service) disassociate(x *q, f *FloatingIP) error {
	f.PortID, f.FixedIPAddress, f.RouterID = "", "", ""
	f.Status = StatusDown
	f.RevisionNumber++
	f.UpdatedAt = s.now()
	return x.updateFloatingIP(f)
}

// UpdateFloatingIP associates a floating IP with a port, moves it to
// another, or disassociates it, and changes its description. Faults:
// Unauthorized, Forbidden, NotFound (floating IP, port,
// ExternalGatewayForFloatingIPNotFound), Invalid, Conflict
// (FloatingIPPortAlreadyAssociated).
func (s *Service) UpdateFloatingIP(ctx context.Context, id string, u FloatingIPUpdate) (*FloatingIP, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPtrText("description", u.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	var f *FloatingIP
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if f, err = s.visibleFloatingIP(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "update_floatingip", ownedTarget(f.ProjectID)); err != nil {
			return err
		}
		if u.Description != nil {
			f.Description = *u.Description
		}
		if u.SetPort {
			if u.PortID == "" {
				f.PortID, f.FixedIPAddress, f.RouterID, f.Status = "", "", "", StatusDown
			} else if err := s.associate(x, c, f, u.PortID, u.FixedIPAddress); err != nil {
				return err
			}
		}
		f.RevisionNumber++
		f.UpdatedAt = s.now()
		return x.updateFloatingIP(f)
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpUpdate, f) }})
	return f, nil
}

// DeleteFloatingIP releases a floating IP and its address.
// Faults: Unauthorized, Forbidden, NotFound.
func (s *Service) DeleteFloatingIP(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var f *FloatingIP
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var err error
		if f, err = s.visibleFloatingIP(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "delete_floatingip", ownedTarget(f.ProjectID)); err != nil {
			return err
		}
		if err := x.deleteFloatingIP(id); err != nil {
			return err
		}
		p, err := x.port(f.floatingPortID)
		if err != nil {
			return err
		}
		if err := x.deletePort(p.ID); err != nil {
			return err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, p) })
		return nil
	})
	if err != nil {
		return err
	}
	evs = append([]event{func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpDelete, f) }}, evs...)
	s.fire(ctx, evs)
	return nil
}

// SetFloatingIPStatus records the status the data plane reports for a
// floating IP (ACTIVE once its NAT rules are in place). Like
// SetPortStatus it acts for the system and checks no policy.
// Faults: Invalid, NotFound.
func (s *Service) SetFloatingIPStatus(ctx context.Context, id, status string) error {
	switch status {
	case StatusActive, StatusDown, StatusError:
	default:
		return invalidInput("'%s' is not a floating IP status", status)
	}
	var f *FloatingIP
	err := s.st.write(ctx, func(x *q) error {
		var err error
		if f, err = x.floatingIP(id); err != nil {
			return err
		}
		f.Status = status
		f.UpdatedAt = s.now()
		return x.updateFloatingIP(f)
	})
	if err != nil {
		return err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.FloatingIPChanged(ctx, OpUpdate, f) }})
	return nil
}
