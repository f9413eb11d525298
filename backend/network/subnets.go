package network

import (
	"context"
	"net/netip"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// SubnetCreate is a new subnet. IPVersion 0 is taken from the CIDR.
// GatewayIP nil takes the first address of the CIDR and "" means no
// gateway; AllocationPools nil takes the CIDR minus the network, broadcast
// and gateway addresses; EnableDHCP nil is true.
type SubnetCreate struct {
	NetworkID       string
	ProjectID       string
	Name            string
	Description     string
	IPVersion       int
	CIDR            string
	GatewayIP       *string
	AllocationPools []AllocationPool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      *bool
	IPv6RAMode      string
	IPv6AddressMode string
}

// SubnetUpdate changes the non-nil attributes of a subnet; GatewayIP ""
// removes the gateway.
type SubnetUpdate struct {
	Name            *string
	Description     *string
	GatewayIP       *string
	AllocationPools *[]AllocationPool
	DNSNameservers  *[]string
	HostRoutes      *[]HostRoute
	EnableDHCP      *bool
}

func subnetTarget(sn *Subnet, n *Network) policy.Target {
	t := policy.Target{"project_id": sn.ProjectID, "tenant_id": sn.ProjectID}
	if n != nil {
		networkOn(t, n)
	}
	return t
}

// visibleSubnet loads a subnet c may see (its project's, or one on a
// shared or external network) with its network, or answers SubnetNotFound.
func (s *Service) visibleSubnet(x *q, c *auth.Credentials, id string) (*Subnet, *Network, error) {
	sn, err := x.subnet(id)
	if err != nil {
		return nil, nil, err
	}
	n, err := x.network(sn.NetworkID)
	if err != nil {
		return nil, nil, err
	}
	if !s.canSeeSubnet(c, sn, n) {
		return nil, nil, errSubnetNotFound(id)
	}
	return sn, n, nil
}

func (s *Service) canSeeSubnet(c *auth.Credentials, sn *Subnet, n *Network) bool {
	if !(s.seesAll(c) || sn.ProjectID == c.ProjectID || n.Shared || n.External) {
		return false
	}
	return s.allowed(c, "get_subnet", subnetTarget(sn, n))
}

// GetSubnet returns a subnet the caller may see. Faults: Unauthorized, NotFound.
func (s *Service) GetSubnet(ctx context.Context, id string) (*Subnet, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	sn, _, err := s.visibleSubnet(s.st.read(ctx), c, id)
	return sn, err
}

// ListSubnets lists the subnets the caller may see that match o, and
// whether more follow. Faults: Unauthorized, Invalid, NotFound (marker).
func (s *Service) ListSubnets(ctx context.Context, o ListOptions) ([]Subnet, bool, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, false, err
	}
	x := s.st.read(ctx)
	vis, args := subnetVisibility(s.l2ScopeOf(c))
	ids, more, err := x.listIDs(subnetSpec, vis, args, o)
	if err != nil {
		return nil, false, err
	}
	sns, err := x.subnets(ids)
	if err != nil {
		return nil, false, err
	}
	nets := map[string]*Network{}
	out := sns[:0]
	for i := range sns {
		n := nets[sns[i].NetworkID]
		if n == nil {
			if n, err = x.network(sns[i].NetworkID); err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, false, err
			}
			nets[n.ID] = n
		}
		if s.canSeeSubnet(c, &sns[i], n) {
			out = append(out, sns[i])
		}
	}
	return out, more, nil
}

// CreateSubnet adds a subnet to a network the caller's project owns. Its
// CIDR may not overlap another subnet of the same network (other networks,
// and other projects, may reuse it). With DHCP enabled the network's DHCP
// port (device_owner network:dhcp, made with the first DHCP subnet) gets
// an address on it from the pools (the first, as the subnet is new): that
// is the address dnsmasq serves from. Faults: Unauthorized, Forbidden, NotFound (network),
// Invalid (CIDR, gateway, pools, overlap), Conflict (OverQuota, pools).
func (s *Service) CreateSubnet(ctx context.Context, in SubnetCreate) (*Subnet, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := resolveProject(c, in.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := checkText("name", in.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkText("description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	if in.IPVersion != 0 && in.IPVersion != 4 && in.IPVersion != 6 {
		return nil, invalidInput("%d is not in [4, 6]", in.IPVersion)
	}
	if in.CIDR == "" {
		return nil, badRequest("subnets", "a cidr must be specified in the absence of a subnet pool")
	}
	prefix, err := parseCIDR(in.CIDR, in.IPVersion)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sn := &Subnet{
		ID: newID(), NetworkID: in.NetworkID, ProjectID: project, Name: in.Name, Description: in.Description,
		CIDR: prefix.String(), EnableDHCP: true, IPv6RAMode: in.IPv6RAMode, IPv6AddressMode: in.IPv6AddressMode,
		RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
	}
	sn.IPVersion = 4
	if prefix.Addr().Is6() {
		sn.IPVersion = 6
	}
	if in.EnableDHCP != nil {
		sn.EnableDHCP = *in.EnableDHCP
	}
	if err := checkIPv6Modes(sn, prefix); err != nil {
		return nil, err
	}
	gw := prefix.Addr().Next()
	if in.GatewayIP != nil {
		if gw, err = parseGateway(*in.GatewayIP, prefix); err != nil {
			return nil, err
		}
	}
	if gw.IsValid() {
		sn.GatewayIP = gw.String()
	}
	var pools []pool
	if in.AllocationPools == nil {
		pools = defaultPools(prefix, gw)
	} else if pools, err = checkPools(in.AllocationPools, prefix, gw); err != nil {
		return nil, err
	}
	sn.AllocationPools = toAllocationPools(pools)
	if sn.DNSNameservers, err = checkNameservers(in.DNSNameservers); err != nil {
		return nil, err
	}
	if sn.HostRoutes, err = checkHostRoutes(in.HostRoutes, sn.IPVersion); err != nil {
		return nil, err
	}

	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		n, err := s.visibleNetwork(x, c, in.NetworkID)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "create_subnet", subnetTarget(sn, n)); err != nil {
			return err
		}
		if err := s.checkQuota(x, project, "subnet", 1); err != nil {
			return err
		}
		others, err := x.subnetsOf(n.ID)
		if err != nil {
			return err
		}
		for _, o := range others {
			if netip.MustParsePrefix(o.CIDR).Overlaps(prefix) {
				return invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", sn.CIDR, n.ID)
			}
		}
		if err := x.insertSubnet(sn); err != nil {
			return err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SubnetChanged(ctx, OpCreate, sn) })
		if sn.EnableDHCP {
			ev, err := s.addDHCPAddress(x, n, sn)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, evs)
	return sn, nil
}

// parseGateway validates a requested gateway: "" is none; otherwise an
// address inside the subnet other than its network and broadcast
// addresses, or an IPv6 link-local address.
func parseGateway(s string, p netip.Prefix) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, ok := parseAddr(s)
	if !ok {
		return netip.Addr{}, invalidInput("'%s' is not a valid IP address", s)
	}
	if a.Is4() != p.Addr().Is4() {
		v := 4
		if p.Addr().Is6() {
			v = 6
		}
		return netip.Addr{}, invalidInput("gateway_ip '%s' does not match the ip_version '%d'", s, v)
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a, nil
	}
	if !p.Contains(a) || !usableRange(p).contains(a) {
		return netip.Addr{}, invalidInput("Gateway ip %s is not valid on subnet %s", a, p)
	}
	return a, nil
}

// checkIPv6Modes validates the IPv6 address and RA modes.
func checkIPv6Modes(sn *Subnet, p netip.Prefix) error {
	valid := map[string]bool{"": true, ModeSLAAC: true, ModeDHCPv6Stateful: true, ModeDHCPv6Stateless: true}
	for _, m := range []string{sn.IPv6RAMode, sn.IPv6AddressMode} {
		if !valid[m] {
			return invalidInput("'%s' is not in [slaac, dhcpv6-stateful, dhcpv6-stateless]", m)
		}
	}
	if sn.IPVersion == 4 && (sn.IPv6RAMode != "" || sn.IPv6AddressMode != "") {
		return invalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4")
	}
	if sn.IPv6RAMode != "" && sn.IPv6AddressMode != "" && sn.IPv6RAMode != sn.IPv6AddressMode {
		return invalidInput("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. "+
			"If both attributes are set, they must be the same value", sn.IPv6RAMode, sn.IPv6AddressMode)
	}
	if autoAddressed(sn) && p.Bits() != 64 {
		return invalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, "+
			"which requires the prefix to be /64", p)
	}
	return nil
}

func checkNameservers(in []string) ([]string, error) {
	if len(in) > maxDNSNameservers {
		return nil, fault400("DNSNameServersExhausted",
			"Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit %d.", maxDNSNameservers)
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, d := range in {
		a, ok := parseAddr(d)
		if !ok {
			return nil, invalidInput("'%s' is not a valid nameserver. '%s' is not a valid IP address", d, d)
		}
		if seen[a.String()] {
			return nil, invalidInput("Duplicate nameserver '%s'", d)
		}
		seen[a.String()] = true
		out = append(out, a.String())
	}
	return out, nil
}

func checkHostRoutes(in []HostRoute, ipVersion int) ([]HostRoute, error) {
	if len(in) > maxHostRoutes {
		return nil, fault400("HostRoutesExhausted",
			"Unable to complete operation for subnet. The number of host routes exceeds the limit %d.", maxHostRoutes)
	}
	out := make([]HostRoute, 0, len(in))
	seen := map[HostRoute]bool{}
	for _, r := range in {
		d, ok := parseAnyPrefix(r.Destination, false)
		if !ok {
			return nil, invalidInput("'%s' is not a valid IP subnet", r.Destination)
		}
		nh, ok := parseAddr(r.NextHop)
		if !ok {
			return nil, invalidInput("'%s' is not a valid IP address", r.NextHop)
		}
		if d.Addr().Is4() != (ipVersion == 4) || nh.Is4() != (ipVersion == 4) {
			return nil, invalidInput("Host route %s via %s does not match the subnet's ip_version %d", r.Destination, r.NextHop, ipVersion)
		}
		hr := HostRoute{Destination: d.String(), NextHop: nh.String()}
		if seen[hr] {
			return nil, invalidInput("Duplicate hostroute '%s'", hr.Destination)
		}
		seen[hr] = true
		out = append(out, hr)
	}
	return out, nil
}

// UpdateSubnet changes a subnet. A new gateway may not be held by another
// port; new pools may not contain the gateway. Turning DHCP on gives the
// DHCP port an address on the subnet and turning it off takes it away.
// Faults: Unauthorized, Forbidden, NotFound, Invalid, Conflict.
func (s *Service) UpdateSubnet(ctx context.Context, id string, u SubnetUpdate) (*Subnet, error) {
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
	var sn *Subnet
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		var n *Network
		var err error
		if sn, n, err = s.visibleSubnet(x, c, id); err != nil {
			return err
		}
		if err := s.enforce(c, "update_subnet", subnetTarget(sn, n)); err != nil {
			return err
		}
		prefix := netip.MustParsePrefix(sn.CIDR)
		gw, _ := parseAddr(sn.GatewayIP)
		if u.GatewayIP != nil {
			ngw, err := parseGateway(*u.GatewayIP, prefix)
			if err != nil {
				return err
			}
			if ngw.IsValid() && ngw != gw {
				if owner, err := x.addressOwner(sn.ID, ngw.String()); err != nil {
					return err
				} else if owner != "" {
					return fault409("GatewayIpInUse", "Gateway ip %s is in use by port %s. Unable to update.", ngw, owner)
				}
			}
			gw = ngw
			sn.GatewayIP = ""
			if gw.IsValid() {
				sn.GatewayIP = gw.String()
			}
		}
		if u.AllocationPools != nil {
			pools, err := checkPools(*u.AllocationPools, prefix, gw)
			if err != nil {
				return err
			}
			sn.AllocationPools = toAllocationPools(pools)
		} else if u.GatewayIP != nil && gw.IsValid() {
			for _, pl := range subnetPools(sn) {
				if pl.contains(gw) {
					return fault409("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s.", gw, pl)
				}
			}
		}
		if u.DNSNameservers != nil {
			if sn.DNSNameservers, err = checkNameservers(*u.DNSNameservers); err != nil {
				return err
			}
		}
		if u.HostRoutes != nil {
			if sn.HostRoutes, err = checkHostRoutes(*u.HostRoutes, sn.IPVersion); err != nil {
				return err
			}
		}
		if u.Name != nil {
			sn.Name = *u.Name
		}
		if u.Description != nil {
			sn.Description = *u.Description
		}
		dhcpChange := u.EnableDHCP != nil && *u.EnableDHCP != sn.EnableDHCP
		if u.EnableDHCP != nil {
			sn.EnableDHCP = *u.EnableDHCP
		}
		sn.RevisionNumber++
		sn.UpdatedAt = s.now()
		if err := x.updateSubnet(sn); err != nil {
			return err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SubnetChanged(ctx, OpUpdate, sn) })
		if dhcpChange {
			var ev event
			if sn.EnableDHCP {
				ev, err = s.addDHCPAddress(x, n, sn)
			} else {
				ev, err = s.removeDHCPAddress(x, sn)
			}
			if err != nil {
				return err
			}
			if ev != nil {
				evs = append(evs, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.fire(ctx, evs)
	return sn, nil
}

// DeleteSubnet deletes a subnet none of whose addresses is held by a port
// other than the network's DHCP port, whose address on it is released.
// Faults: Unauthorized, Forbidden, NotFound, Conflict (SubnetInUse).
func (s *Service) DeleteSubnet(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var evs []event
	err = s.st.write(ctx, func(x *q) error {
		sn, n, err := s.visibleSubnet(x, c, id)
		if err != nil {
			return err
		}
		if err := s.enforce(c, "delete_subnet", subnetTarget(sn, n)); err != nil {
			return err
		}
		if k, err := x.allocationsOn(id, OwnerDHCP); err != nil {
			return err
		} else if k > 0 {
			return errSubnetInUse(id)
		}
		ev, err := s.removeDHCPAddress(x, sn)
		if err != nil {
			return err
		}
		if ev != nil {
			evs = append(evs, ev)
		}
		if err := x.deleteSubnet(id); err != nil {
			return err
		}
		evs = append(evs, func(ctx context.Context, nt Notifier) { nt.SubnetChanged(ctx, OpDelete, sn) })
		return nil
	})
	if err != nil {
		return err
	}
	s.fire(ctx, evs)
	return nil
}

// addDHCPAddress gives the network's DHCP port, made here when the network
// has none, an address on sn.
func (s *Service) addDHCPAddress(x *q, n *Network, sn *Subnet) (event, error) {
	ports, err := x.dhcpPorts(n.ID)
	if err != nil {
		return nil, err
	}
	op := OpUpdate
	var p *Port
	if len(ports) > 0 {
		p = &ports[0]
	} else {
		mac, err := x.uniqueMAC(n.ID)
		if err != nil {
			return nil, err
		}
		now := s.now()
		p = &Port{
			ID: newID(), NetworkID: n.ID, ProjectID: n.ProjectID, MACAddress: mac, AdminStateUp: true,
			Status: StatusDown, DeviceID: "dhcp-" + n.ID, DeviceOwner: OwnerDHCP,
			PortSecurityEnabled: n.PortSecurityEnabled, BindingVNICType: VNICNormal, BindingProfile: map[string]any{},
			FixedIPs: []FixedIP{}, SecurityGroups: []string{}, AllowedAddressPairs: []AddressPair{},
			RevisionNumber: 1, CreatedAt: now, UpdatedAt: now,
		}
		p.BindingVIFType = vifType(p)
		if err := x.insertPort(p); err != nil {
			return nil, err
		}
		op = OpCreate
	}
	got, err := x.allocate(p, []ipWant{{sn: sn}}, nil)
	if err != nil {
		return nil, err
	}
	fixed := append(append([]FixedIP{}, p.FixedIPs...), got...)
	if err := x.storeAllocations(p, p.FixedIPs, fixed); err != nil {
		return nil, err
	}
	if op == OpUpdate {
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		if err := x.updatePort(p); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, op, p) }, nil
}

// removeDHCPAddress releases the DHCP port's address on sn, deleting the
// port when it holds no other. It returns nil when there was none.
func (s *Service) removeDHCPAddress(x *q, sn *Subnet) (event, error) {
	ports, err := x.dhcpPorts(sn.NetworkID)
	if err != nil {
		return nil, err
	}
	for i := range ports {
		p := &ports[i]
		var rest []FixedIP
		for _, f := range p.FixedIPs {
			if f.SubnetID != sn.ID {
				rest = append(rest, f)
			}
		}
		if len(rest) == len(p.FixedIPs) {
			continue
		}
		if len(rest) == 0 {
			if err := x.deletePort(p.ID); err != nil {
				return nil, err
			}
			return func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpDelete, p) }, nil
		}
		if err := x.storeAllocations(p, p.FixedIPs, rest); err != nil {
			return nil, err
		}
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		if err := x.updatePort(p); err != nil {
			return nil, err
		}
		return func(ctx context.Context, nt Notifier) { nt.PortChanged(ctx, OpUpdate, p) }, nil
	}
	return nil, nil
}
