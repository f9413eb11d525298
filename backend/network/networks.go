package network

import (
	"context"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// NetworkCreate is a new network. Nil pointers and empty strings take
// Neutron's defaults; the provider attributes (NetworkType,
// PhysicalNetwork, SegmentationID), Shared and External are for admins.
type NetworkCreate struct {
	ProjectID           string
	Name                string
	Description         string
	AdminStateUp        *bool
	Shared              *bool
	External            *bool
	NetworkType         string
	PhysicalNetwork     string
	SegmentationID      *int
	MTU                 *int
	PortSecurityEnabled *bool
}

// NetworkUpdate changes the non-nil attributes of a network.
type NetworkUpdate struct {
	Name                *string
	Description         *string
	AdminStateUp        *bool
	Shared              *bool
	External            *bool
	MTU                 *int
	PortSecurityEnabled *bool
}

func networkTarget(n *Network) policy.Target {
	return policy.Target{
		"project_id": n.ProjectID, "tenant_id": n.ProjectID,
		"shared": boolStr(n.Shared), "router:external": boolStr(n.External),
	}
}

// networkOn is the part of a policy target describing the network a
// subnet or port is on.
func networkOn(t policy.Target, n *Network) policy.Target {
	t["network:project_id"] = n.ProjectID
	t["network:tenant_id"] = n.ProjectID
	t["network:shared"] = boolStr(n.Shared)
	t["network:router:external"] = boolStr(n.External)
	return t
}

// canSeeNetwork reports whether c may see n at all.
func (s *Service) canSeeNetwork(c *auth.Credentials, n *Network) bool {
	if !(s.seesAll(c) || n.ProjectID == c.ProjectID || n.Shared || n.External) {
		return false
	}
	return s.allowed(c, "get_network", networkTarget(n))
}

// visibleNetwork loads a network c may see, or answers NetworkNotFound.
func (s *Service) visibleNetwork(x *q, c *auth.Credentials, id string) (*Network, error) {
	n, err := x.network(id)
	if err != nil {
		return nil, err
	}
	if !s.canSeeNetwork(c, n) {
		return nil, errNetworkNotFound(id)
	}
	return n, nil
}

// ShowProviderAttributes reports whether the caller may see a network's
// provider attributes (network type, physical network, segmentation ID).
func (s *Service) ShowProviderAttributes(ctx context.Context, n *Network) bool {
	c, err := auth.Caller(ctx)
	return err == nil && s.allowed(c, "get_network:provider:network_type", networkTarget(n))
}

// GetNetwork returns a network the caller may see: its project's, a shared
// or an external one. Faults: Unauthorized, NotFound.
func (s *Service) GetNetwork(ctx context.Context, id string) (*Network, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleNetwork(s.st.read(ctx), c, id)
}

// ListNetworks lists the networks the caller may see that match o, and
// whether more follow. Faults: Unauthorized, Invalid (a filter or sort
// key), NotFound (the marker).
func (s *Service) ListNetworks(ctx context.Context, o ListOptions) ([]Network, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	// Filtering or sorting on an attribute the caller may not see would
	// reveal it.
	for _, k := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
		_, filtered := o.Filters[k]
		if (filtered || slices.Contains(o.SortKeys, k)) && !s.allowed(c, "get_network:"+k, nil) {
			return nil, false, s.enforce(c, "get_network:"+k, nil)
		}
	}
	x := s.st.read(ctx)
	vis, args := networkVisibility(s.l2ScopeOf(c))
	ids, more, err := x.listIDs(networkSpec, vis, args, o)
	if err != nil {
		return nil, false, err
	}
	ns, err := x.networks(ids)
	if err != nil {
		return nil, false, err
	}
	out := ns[:0]
	for i := range ns {
		if s.canSeeNetwork(c, &ns[i]) {
			out = append(out, ns[i])
		}
	}
	return out, more, nil
}

// CreateNetwork creates a network. A tenant network gets the configured
// tenant type (VXLAN) and a free VNI; an admin may instead ask for
// a flat, VLAN or VXLAN provider network, whose VLAN ID or VNI is allocated
// from the configured range when not given. The MTU is 1450 for VXLAN and
// 1500 otherwise unless a smaller one is asked for. Faults: Unauthorized,
// Forbidden, Invalid, Conflict (OverQuota, segment in use), Unavailable
// (no segment left).
func (s *Service) CreateNetwork(ctx context.Context, in NetworkCreate) (*Network, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	n := &Network{
		ID: newID(), ProjectID: project, Name: in.Name, Description: in.Description,
		AdminStateUp: true, Status: StatusActive, PortSecurityEnabled: true, RevisionNumber: 1,
		CreatedAt: now, UpdatedAt: now, Subnets: []string{},
	}
	if in.AdminStateUp != nil {
		n.AdminStateUp = *in.AdminStateUp
	}
	if in.Shared != nil {
		n.Shared = *in.Shared
	}
	if in.External != nil {
		n.External = *in.External
	}
	if in.PortSecurityEnabled != nil {
		n.PortSecurityEnabled = *in.PortSecurityEnabled
	}
	t := networkTarget(n)
	if err := s.enforce(c, "create_network", t); err != nil {
		return nil, err
	}
	checks := []struct {
		set    bool
		action string
	}{
		{n.Shared, "create_network:shared"},
		{n.External, "create_network:router:external"},
		{in.NetworkType != "", "create_network:provider:network_type"},
		{in.PhysicalNetwork != "", "create_network:provider:physical_network"},
		{in.SegmentationID != nil, "create_network:provider:segmentation_id"},
		{!n.PortSecurityEnabled, "create_network:port_security_enabled"},
	}
	for _, ch := range checks {
		if ch.set {
			if err := s.enforce(c, ch.action, t); err != nil {
				return nil, err
			}
		}
	}
	if err := checkText("name", n.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkText("description", n.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	if err := s.providerSegment(n, in); err != nil {
		return nil, err
	}
	if err := setMTU(n, in.MTU); err != nil {
		return nil, err
	}
	err = s.st.write(ctx, func(x *q) error {
		if err := s.checkQuota(x, project, "network", 1); err != nil {
			return err
		}
		if err := s.allocateSegment(x, n); err != nil {
			return err
		}
		return x.insertNetwork(n)
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.NetworkChanged(ctx, OpCreate, n) }})
	return n, nil
}

// providerSegment validates the provider attributes and fills n's type and
// physical network; a segmentation ID left nil is allocated later, inside
// the creating transaction.
func (s *Service) providerSegment(n *Network, in NetworkCreate) error {
	typ, phys, seg := in.NetworkType, in.PhysicalNetwork, in.SegmentationID
	if typ == "" {
		if phys != "" || seg != nil {
			return invalidInput("provider:network_type required")
		}
		typ = s.cfg.TenantNetworkType
		if typ == TypeVLAN {
			phys = s.defaultVLANPhysnet()
		}
	}
	switch typ {
	case TypeFlat:
		if phys == "" {
			return invalidInput("physical_network required for flat provider network")
		}
		if seg != nil {
			return invalidInput("segmentation_id prohibited for flat provider network")
		}
	case TypeVLAN:
		if phys == "" {
			phys = s.defaultVLANPhysnet()
		}
		if phys == "" {
			return invalidInput("physical_network required for VLAN provider network")
		}
		if seg != nil && (*seg < 1 || *seg > maxVLAN) {
			return invalidInput("segmentation_id out of range (1 through %d)", maxVLAN)
		}
	case TypeVXLAN:
		if phys != "" {
			return invalidInput("provider:physical_network specified for VXLAN network")
		}
		if seg != nil && (*seg < 1 || *seg > maxVNI) {
			return invalidInput("segmentation_id out of range (1 through %d)", maxVNI)
		}
	default:
		return invalidInput("network_type value '%s' not supported", typ)
	}
	if phys != "" {
		if err := checkPhysnet(phys); err != nil {
			return err
		}
	}
	n.NetworkType, n.PhysicalNetwork = typ, phys
	if seg != nil {
		v := *seg
		n.SegmentationID = &v
	}
	return nil
}

// defaultVLANPhysnet is the physical network of the only configured VLAN
// range, or "" when there is not exactly one.
func (s *Service) defaultVLANPhysnet() string {
	if len(s.cfg.VLANRanges) != 1 {
		return ""
	}
	for p := range s.cfg.VLANRanges {
		return p
	}
	return ""
}

// allocateSegment checks a requested segment is free, or allocates one
// from the configured range: the next above the highest in use, so a
// released segment is not reused while hosts may still carry its state,
// then the lowest free once the range's top is reached.
func (s *Service) allocateSegment(x *q, n *Network) error {
	if n.NetworkType == TypeFlat || n.SegmentationID != nil {
		taken, err := x.segmentTaken(n.NetworkType, n.PhysicalNetwork, n.SegmentationID)
		if err != nil {
			return err
		}
		if !taken {
			return nil
		}
		switch n.NetworkType {
		case TypeFlat:
			return fault409("FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use.", n.PhysicalNetwork)
		case TypeVLAN:
			return fault409("VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.",
				*n.SegmentationID, n.PhysicalNetwork)
		default:
			return fault409("TunnelIdInUse", "Unable to create the network. The tunnel ID %d is in use.", *n.SegmentationID)
		}
	}
	var lo, hi int
	switch n.NetworkType {
	case TypeVXLAN:
		lo, hi = s.cfg.VNIRange[0], s.cfg.VNIRange[1]
	case TypeVLAN:
		r, ok := s.cfg.VLANRanges[n.PhysicalNetwork]
		if !ok {
			return errNoNetworkAvailable()
		}
		lo, hi = r[0], r[1]
	}
	next, ok, err := x.freeSegment(n.NetworkType, n.PhysicalNetwork, lo, hi)
	if err != nil {
		return err
	}
	if !ok {
		return errNoNetworkAvailable()
	}
	n.SegmentationID = &next
	return nil
}

// maxMTUFor is the largest MTU a network of type can carry over a 1500-byte
// physical network.
func maxMTUFor(typ string) int {
	if typ == TypeVXLAN {
		return defaultMTU - vxlanOverhead
	}
	return defaultMTU
}

func setMTU(n *Network, mtu *int) error {
	max := maxMTUFor(n.NetworkType)
	if mtu == nil {
		n.MTU = max
		return nil
	}
	if *mtu > max {
		return invalidInput("Requested MTU is too big, maximum is %d", max)
	}
	if *mtu < minMTU {
		return invalidInput("Requested MTU is too small, minimum is %d", minMTU)
	}
	n.MTU = *mtu
	return nil
}

// UpdateNetwork changes a network. Unsharing a network other projects have
// ports on, and making an external network internal while routers or
// floating IPs use it, are refused. Faults: Unauthorized, Forbidden,
// NotFound, Invalid, Conflict (InvalidSharedSetting, ExternalNetworkInUse).
func (s *Service) UpdateNetwork(ctx context.Context, id string, u NetworkUpdate) (*Network, error) {
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
	var n *Network
	err = s.st.write(ctx, func(x *q) error {
		if n, err = s.visibleNetwork(x, c, id); err != nil {
			return err
		}
		t := networkTarget(n)
		if err := s.enforce(c, "update_network", t); err != nil {
			return err
		}
		if u.Shared != nil && *u.Shared != n.Shared {
			if err := s.enforce(c, "update_network:shared", t); err != nil {
				return err
			}
			if !*u.Shared {
				if k, err := x.foreignPorts(n.ID, n.ProjectID); err != nil {
					return err
				} else if k > 0 {
					return fault409("InvalidSharedSetting",
						"Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
				}
			}
			n.Shared = *u.Shared
		}
		if u.External != nil && *u.External != n.External {
			if err := s.enforce(c, "update_network:router:external", t); err != nil {
				return err
			}
			if !*u.External {
				if k, err := x.externalUses(n.ID); err != nil {
					return err
				} else if k > 0 {
					return fault409("ExternalNetworkInUse",
						"External network %s cannot be updated to be made non-external, since it has existing gateway ports.", n.ID)
				}
			}
			n.External = *u.External
		}
		if u.MTU != nil {
			if err := setMTU(n, u.MTU); err != nil {
				return err
			}
		}
		if u.Name != nil {
			n.Name = *u.Name
		}
		if u.Description != nil {
			n.Description = *u.Description
		}
		if u.AdminStateUp != nil {
			n.AdminStateUp = *u.AdminStateUp
		}
		if u.PortSecurityEnabled != nil {
			n.PortSecurityEnabled = *u.PortSecurityEnabled
		}
		n.RevisionNumber++
		n.UpdatedAt = s.now()
		return x.updateNetwork(n)
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, []event{func(ctx context.Context, nt Notifier) { nt.NetworkChanged(ctx, OpUpdate, n) }})
	return n, nil
}

// DeleteNetwork deletes a network with its subnets and DHCP port. A network
// with any other port (an instance's, a router's, a floating IP's) is in
// use. Faults: Unauthorized, Forbidden, NotFound, Conflict (NetworkInUse).
func (s *Service) DeleteNetwork(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		n, err := s.visibleNetwork(x, c, id)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "delete_network", networkTarget(n)); err != nil {
			return err
		}
		if k, err := x.portsInUse(id); err != nil {
			return err
		} else if k > 0 {
			return errNetworkInUse(id)
		}
		dhcp, err := x.dhcpPorts(id)
		if err != nil {
			return err
		}
		for i := range dhcp {
			p := &dhcp[i]
			if err := x.deletePort(p.ID); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, p) })
		}
		subnets, err := x.subnetsOf(id)
		if err != nil {
			return err
		}
		for i := range subnets {
			sn := &subnets[i]
			if err := x.deleteSubnet(sn.ID); err != nil {
				return err
			}
			evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SubnetChanged(ctx, OpDelete, sn) })
		}
		if err := x.deleteNetwork(id); err != nil {
			return err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.NetworkChanged(ctx, OpDelete, n) })
		return nil
	})
	if err != nil {
		return err
	}
	s.fire(ctx, evs)
	return nil
}

// isNotFound reports whether err is a NotFound fault, so a caller can tell
// a missing resource from a database error.
func isNotFound(err error) bool { return fault.Is(err, fault.NotFound) }
