package network

// What the data plane reads to build a network, a port's firewall and a
// router on a host. These methods act for the system, not for a caller:
// only trusted in-process code (the data-plane driver, the compute
// service) calls them, no REST route exposes them, and they check no
// policy.

import (
	"context"
	"net/netip"
	"slices"
)

// NetworkPlan is one network as a host builds it: its bridge (VXLAN VNI or
// VLAN on a physical network), its subnets with the DHCP server's address
// on each, and every port's MAC and addresses for dnsmasq's static leases.
type NetworkPlan struct {
	Network  Network
	Subnets  []SubnetPlan
	DHCPPort *Port // nil when no subnet has DHCP
	Ports    []Port
}

// SubnetPlan is a subnet with the DHCP port's address on it ("" when DHCP
// is off).
type SubnetPlan struct {
	Subnet      Subnet
	DHCPAddress string
}

// FirewallRule is a security group rule as a host applies it to one port.
// Protocol is a number, -1 for any. AnyRemote says the rule matches every
// peer; otherwise Remotes are the peer prefixes it matches: the rule's
// remote_ip_prefix, or the addresses (/32, /128) of the members of its
// remote group, which may be none, so that the rule matches nothing.
type FirewallRule struct {
	RuleID          string
	SecurityGroupID string
	Direction       string
	Ethertype       string
	Protocol        int
	PortRangeMin    *int
	PortRangeMax    *int
	AnyRemote       bool
	Remotes         []string
	RemoteGroupID   string
	Stateful        bool
}

// PortPlan is one port as a host plugs it: the port, its network, the
// subnets of its addresses, and, when port security is on, the firewall
// (default deny ingress, the rules below allowed) and the source
// addresses and MACs anti-spoofing lets it send from.
type PortPlan struct {
	Port             Port
	Network          Network
	Subnets          []Subnet
	PortSecurity     bool
	Rules            []FirewallRule
	AllowedAddresses []AddressPair
}

// RouterLeg is a router port with the subnets of its addresses.
type RouterLeg struct {
	Port    Port
	Subnets []Subnet
}

// RouterPlan is one router as its namespace is built: the gateway leg
// (nil without a gateway) with SNAT on or off, a leg per attached subnet,
// the extra routes, and the associated floating IPs (DNAT and SNAT of
// FloatingIPAddress to FixedIPAddress).
type RouterPlan struct {
	Router      Router
	Gateway     *RouterLeg
	Interfaces  []RouterLeg
	FloatingIPs []FloatingIP
}

// NetworkPlan returns what the data plane needs to build network id.
// Faults: NotFound.
func (s *Service) NetworkPlan(ctx context.Context, id string) (*NetworkPlan, error) {
	x := s.st.read(ctx)
	n, err := x.network(id)
	if err != nil {
		return nil, err
	}
	sns, err := x.subnetsOf(id)
	if err != nil {
		return nil, err
	}
	ports, err := x.networkPorts(id)
	if err != nil {
		return nil, err
	}
	plan := &NetworkPlan{Network: *n, Ports: ports}
	for i := range ports {
		if ports[i].DeviceOwner == OwnerDHCP {
			plan.DHCPPort = &ports[i]
			break
		}
	}
	for _, sn := range sns {
		sp := SubnetPlan{Subnet: sn}
		if sn.EnableDHCP && plan.DHCPPort != nil {
			for _, f := range plan.DHCPPort.FixedIPs {
				if f.SubnetID == sn.ID {
					sp.DHCPAddress = f.IPAddress
				}
			}
		}
		plan.Subnets = append(plan.Subnets, sp)
	}
	return plan, nil
}

// PortPlan returns what the data plane needs to plug port id, with its
// security group rules expanded: remote groups become their members'
// addresses (fixed IPs and allowed address pairs of every port in the
// group). Faults: NotFound.
func (s *Service) PortPlan(ctx context.Context, id string) (*PortPlan, error) {
	x := s.st.read(ctx)
	p, err := x.port(id)
	if err != nil {
		return nil, err
	}
	n, err := x.network(p.NetworkID)
	if err != nil {
		return nil, err
	}
	var sids []string
	for _, f := range p.FixedIPs {
		if !slices.Contains(sids, f.SubnetID) {
			sids = append(sids, f.SubnetID)
		}
	}
	sns, err := x.subnets(sids)
	if err != nil {
		return nil, err
	}
	plan := &PortPlan{Port: *p, Network: *n, Subnets: sns, PortSecurity: p.PortSecurityEnabled,
		Rules: []FirewallRule{}, AllowedAddresses: []AddressPair{}}
	if !p.PortSecurityEnabled {
		return plan, nil
	}
	for _, f := range p.FixedIPs {
		plan.AllowedAddresses = append(plan.AllowedAddresses, AddressPair{IPAddress: f.IPAddress, MACAddress: p.MACAddress})
	}
	plan.AllowedAddresses = append(plan.AllowedAddresses, p.AllowedAddressPairs...)
	groups, err := x.securityGroups(p.SecurityGroups)
	if err != nil {
		return nil, err
	}
	members := map[string][]netip.Prefix{}
	for _, g := range groups {
		for _, r := range g.Rules {
			fr := FirewallRule{RuleID: r.ID, SecurityGroupID: g.ID, Direction: r.Direction, Ethertype: r.Ethertype,
				Protocol: ruleNumber(&r), PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax,
				RemoteGroupID: r.RemoteGroupID, Stateful: g.Stateful, Remotes: []string{}}
			switch {
			case r.RemoteGroupID != "":
				m, ok := members[r.RemoteGroupID]
				if !ok {
					if m, err = x.groupAddresses(r.RemoteGroupID); err != nil {
						return nil, err
					}
					members[r.RemoteGroupID] = m
				}
				for _, pfx := range m {
					if pfx.Addr().Is4() == (r.Ethertype == EtherIPv4) {
						fr.Remotes = append(fr.Remotes, pfx.String())
					}
				}
			case r.RemoteIPPrefix == "" || r.RemoteIPPrefix == "0.0.0.0/0" || r.RemoteIPPrefix == "::/0":
				fr.AnyRemote = true
			default:
				fr.Remotes = append(fr.Remotes, r.RemoteIPPrefix)
			}
			plan.Rules = append(plan.Rules, fr)
		}
	}
	return plan, nil
}

// groupAddresses are the addresses of a group's member ports, sorted and
// without duplicates.
func (x *q) groupAddresses(groupID string) ([]netip.Prefix, error) {
	ports, err := x.groupMemberPorts(groupID)
	if err != nil {
		return nil, err
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	add := func(s string) {
		if p, ok := parseAnyPrefix(s, true); ok && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			add(f.IPAddress)
		}
		for _, ap := range p.AllowedAddressPairs {
			add(ap.IPAddress)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out, nil
}

// RouterPlan returns what the data plane needs to build router id.
// Faults: NotFound.
func (s *Service) RouterPlan(ctx context.Context, id string) (*RouterPlan, error) {
	x := s.st.read(ctx)
	r, err := x.router(id)
	if err != nil {
		return nil, err
	}
	plan := &RouterPlan{Router: *r, Interfaces: []RouterLeg{}, FloatingIPs: []FloatingIP{}}
	leg := func(p Port) (RouterLeg, error) {
		var sids []string
		for _, f := range p.FixedIPs {
			sids = append(sids, f.SubnetID)
		}
		sns, err := x.subnets(sids)
		return RouterLeg{Port: p, Subnets: sns}, err
	}
	if r.gwPortID != "" {
		gw, err := x.port(r.gwPortID)
		if err != nil {
			return nil, err
		}
		l, err := leg(*gw)
		if err != nil {
			return nil, err
		}
		plan.Gateway = &l
	}
	ifaces, err := x.routerInterfaces(id)
	if err != nil {
		return nil, err
	}
	for _, p := range ifaces {
		l, err := leg(p)
		if err != nil {
			return nil, err
		}
		plan.Interfaces = append(plan.Interfaces, l)
	}
	fips, err := x.floatingIPsOfRouter(id)
	if err != nil {
		return nil, err
	}
	plan.FloatingIPs = append(plan.FloatingIPs, fips...)
	return plan, nil
}
