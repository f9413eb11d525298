package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Names the agent's plane gives a network's bridge and a port's tap
// (agents/netplane/names.go).

// BridgeName is the bridge of network id on every host: brq<id[:11]>.
func BridgeName(networkID string) string { return "brq" + short(networkID, 11) }

// TapName is the device of port id: tap<id[:11]>.
func TapName(portID string) string { return "tap" + short(portID, 11) }

func short(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// Networks.

// syncNetwork pushes network id to every up host with an instance port
// bound on it and to the network host, and removes it from the hosts that
// no longer need it; a deleted network is removed from every up host.
func (s *Syncer) syncNetwork(ctx context.Context, id string) error {
	up, err := s.upHosts(ctx)
	if err != nil {
		return err
	}
	plan, err := s.net().NetworkPlan(ctx, id)
	if fault.KindOf(err) == fault.NotFound {
		errs := make([]error, 0, len(up))
		for _, h := range up {
			errs = append(errs, s.call(ctx, h.ID, func(ctx context.Context, c *hosts.Client) error { return c.DeleteNetwork(ctx, id) }))
		}
		if err := s.firstErr("network/"+id, errs); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.netHosts, id)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	if plan.Network.External {
		// The external network is the hosts' external bridge, which the
		// routers' gateway legs join; it has no brq bridge of its own.
		return nil
	}
	nh, err := s.networkHost(ctx)
	if err != nil {
		return err
	}
	byName := map[string]hosts.Host{}
	byID := map[string]hosts.Host{}
	for _, h := range up {
		byName[h.Hostname], byID[h.ID] = h, h
	}
	targets := map[string]bool{nh: true}
	for _, p := range plan.Ports {
		if isCompute(&p) && p.BindingHostID != "" {
			if h, ok := byName[p.BindingHostID]; ok {
				targets[h.ID] = true
			}
		}
	}
	var peers []string // VXLAN endpoints of the hosts the network spans
	for hid := range targets {
		if ip := byID[hid].Inventory.HostIP; ip != "" {
			peers = append(peers, ip)
		}
	}
	hostIDs := sortedKeys(targets)
	errs := make([]error, 0, len(hostIDs))
	for _, hid := range hostIDs {
		spec := s.networkSpec(ctx, plan, hid == nh)
		if spec.Type == agentapi.NetworkTypeVXLAN {
			local := byID[hid].Inventory.HostIP
			if local != "" {
				spec.VXLANLocalIP = local
				for _, p := range peers {
					if p != local {
						spec.VXLANPeers = append(spec.VXLANPeers, p)
					}
				}
			}
		}
		errs = append(errs, s.call(ctx, hid, func(ctx context.Context, c *hosts.Client) error { return c.ApplyNetwork(ctx, spec) }))
	}
	// Hosts it was pushed to that no longer need it.
	s.mu.Lock()
	var stale []string
	for hid := range s.netHosts[id] {
		if !targets[hid] {
			if _, ok := byID[hid]; ok {
				stale = append(stale, hid)
			}
		}
	}
	s.mu.Unlock()
	for _, hid := range stale {
		errs = append(errs, s.call(ctx, hid, func(ctx context.Context, c *hosts.Client) error { return c.DeleteNetwork(ctx, id) }))
	}
	if err := s.firstErr("network/"+id, errs); err != nil {
		return err
	}
	s.mu.Lock()
	s.netHosts[id] = targets
	s.mu.Unlock()
	return nil
}

// networkSpec converts a plan; withDHCP puts the DHCP server in it.
func (s *Syncer) networkSpec(ctx context.Context, plan *network.NetworkPlan, withDHCP bool) agentapi.NetworkSpec {
	n := plan.Network
	spec := agentapi.NetworkSpec{ID: n.ID, Bridge: BridgeName(n.ID), MTU: n.MTU, Type: n.NetworkType}
	if n.SegmentationID != nil {
		spec.SegmentationID = *n.SegmentationID
	}
	switch n.NetworkType {
	case network.TypeFlat, network.TypeVLAN:
		spec.PhysicalInterface = n.PhysicalNetwork
		if nic, ok := s.cfg.PhysicalInterfaces[n.PhysicalNetwork]; ok {
			spec.PhysicalInterface = nic
		}
	case "":
		spec.Type = agentapi.NetworkTypeLocal
	}
	dhcp := withDHCP && plan.DHCPPort != nil
	for _, sp := range plan.Subnets {
		sn := sp.Subnet
		if sn.IPVersion != 4 {
			continue // the hosts' plane is IPv4 only
		}
		ss := agentapi.SubnetSpec{ID: sn.ID, CIDR: sn.CIDR, GatewayIP: sn.GatewayIP,
			EnableDHCP: sn.EnableDHCP && (!dhcp || sp.DHCPAddress != "")}
		if len(sn.AllocationPools) > 0 {
			ss.DHCPStart = sn.AllocationPools[0].Start
			ss.DHCPEnd = sn.AllocationPools[len(sn.AllocationPools)-1].End
		}
		for _, d := range sn.DNSNameservers {
			if a, err := netip.ParseAddr(d); err == nil && a.Is4() {
				ss.DNSNameservers = append(ss.DNSNameservers, d)
			}
		}
		if dhcp {
			ss.DHCPPortIP = sp.DHCPAddress
		}
		spec.Subnets = append(spec.Subnets, ss)
	}
	if !dhcp {
		return spec
	}
	spec.DHCPPort = &agentapi.DHCPPort{ID: plan.DHCPPort.ID, MAC: plan.DHCPPort.MACAddress}
	seen := map[string]bool{}
	for _, p := range plan.Ports {
		if !isCompute(&p) || seen[strings.ToLower(p.MACAddress)] {
			continue
		}
		ip := firstIPv4(p.FixedIPs)
		if ip == "" {
			continue
		}
		seen[strings.ToLower(p.MACAddress)] = true
		spec.DHCPHosts = append(spec.DHCPHosts, agentapi.DHCPHost{MAC: p.MACAddress, IP: ip, Hostname: s.hostname(ctx, &p, ip)})
	}
	return spec
}

// hostname is the DHCP hostname of a port: its device's name made a valid
// hostname, or host-<ip-with-dashes>.
func (s *Syncer) hostname(ctx context.Context, p *network.Port, ip string) string {
	if s.cfg.DeviceName != nil && p.DeviceID != "" {
		if h := sanitizeHostname(s.cfg.DeviceName(ctx, p.DeviceID)); h != "" {
			return h
		}
	}
	return "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}

// sanitizeHostname keeps [a-z0-9-] of name, lower-cased, at most 63
// characters, without a leading or trailing '-'.
func sanitizeHostname(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		case c == ' ' || c == '_' || c == '.':
			b.WriteByte('-')
		}
	}
	h := b.String()
	if len(h) > 63 {
		h = h[:63]
	}
	return strings.Trim(h, "-")
}

func firstIPv4(ips []network.FixedIP) string {
	for _, f := range ips {
		if a, err := netip.ParseAddr(f.IPAddress); err == nil && a.Is4() {
			return f.IPAddress
		}
	}
	return ""
}

// Routers.

// syncRouter pushes router id to the network host (removing it from the
// host it was on before, if another); a deleted router is removed.
func (s *Syncer) syncRouter(ctx context.Context, id string) error {
	plan, err := s.net().RouterPlan(ctx, id)
	notFound := fault.KindOf(err) == fault.NotFound
	if err != nil && !notFound {
		return err
	}
	s.mu.Lock()
	was, pushed := s.rtrHost[id]
	s.mu.Unlock()
	nh, herr := s.networkHost(ctx)
	if notFound {
		target := was
		if !pushed {
			if herr != nil {
				return herr
			}
			target = nh
		}
		if err := s.call(ctx, target, func(ctx context.Context, c *hosts.Client) error { return c.DeleteRouter(ctx, id) }); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.rtrHost, id)
		for f, r := range s.fipRouter {
			if r == id {
				delete(s.fipRouter, f)
			}
		}
		s.mu.Unlock()
		return nil
	}
	if herr != nil {
		return herr
	}
	spec, err := s.routerSpec(ctx, plan)
	if err != nil {
		return err
	}
	if err := s.call(ctx, nh, func(ctx context.Context, c *hosts.Client) error { return c.ApplyRouter(ctx, spec) }); err != nil {
		return err
	}
	if pushed && was != nh {
		if err := s.call(ctx, was, func(ctx context.Context, c *hosts.Client) error { return c.DeleteRouter(ctx, id) }); err != nil {
			s.log.Warn("removing a router from its former host failed", "router_id", id, "host_id", was, "err", err)
		}
	}
	s.mu.Lock()
	s.rtrHost[id] = nh
	for f, r := range s.fipRouter {
		if r == id {
			delete(s.fipRouter, f)
		}
	}
	for _, f := range plan.FloatingIPs {
		s.fipRouter[f.ID] = id
	}
	s.mu.Unlock()
	return nil
}

// syncAllRouters queues every router.
func (s *Syncer) syncAllRouters(ctx context.Context) error {
	rts, _, err := s.net().ListRouters(s.sysCtx(ctx), network.ListOptions{})
	if err != nil {
		return err
	}
	for _, r := range rts {
		s.enqueue(task{kind: kindRouter, id: r.ID})
	}
	return nil
}

// routerSpec converts a plan.
func (s *Syncer) routerSpec(ctx context.Context, plan *network.RouterPlan) (agentapi.RouterSpec, error) {
	spec := agentapi.RouterSpec{ID: plan.Router.ID}
	mtus := map[string]int{}
	for _, leg := range plan.Interfaces {
		ipcidr, _ := legAddress(leg)
		if ipcidr == "" {
			continue
		}
		netID := leg.Port.NetworkID
		mtu, ok := mtus[netID]
		if !ok {
			if np, err := s.net().NetworkPlan(ctx, netID); err == nil {
				mtu = np.Network.MTU
			}
			mtus[netID] = mtu
		}
		spec.Interfaces = append(spec.Interfaces, agentapi.RouterInterface{PortID: leg.Port.ID, MAC: leg.Port.MACAddress,
			IPCIDR: ipcidr, Bridge: BridgeName(netID), MTU: mtu})
	}
	if plan.Gateway != nil {
		ipcidr, sn := legAddress(*plan.Gateway)
		if ipcidr == "" || sn.GatewayIP == "" {
			s.log.Warn("router gateway without an IPv4 address and upstream gateway: left out",
				"router_id", plan.Router.ID, "port_id", plan.Gateway.Port.ID)
		} else {
			spec.Gateway = &agentapi.RouterGateway{PortID: plan.Gateway.Port.ID, MAC: plan.Gateway.Port.MACAddress,
				IPCIDR: ipcidr, Bridge: s.cfg.ExternalBridge, GatewayIP: sn.GatewayIP}
			spec.EnableSNAT = plan.Router.Gateway == nil || plan.Router.Gateway.EnableSNAT
		}
	}
	if spec.Gateway != nil {
		for _, f := range plan.FloatingIPs {
			if f.FixedIPAddress == "" || !is4(f.FloatingIPAddress) || !is4(f.FixedIPAddress) {
				continue
			}
			spec.FloatingIPs = append(spec.FloatingIPs, agentapi.FloatingIP{FloatingIP: f.FloatingIPAddress, FixedIP: f.FixedIPAddress})
		}
	}
	for _, r := range plan.Router.Routes {
		if p, err := netip.ParsePrefix(r.Destination); err == nil && p.Addr().Is4() && is4(r.NextHop) {
			spec.Routes = append(spec.Routes, agentapi.Route{Destination: r.Destination, NextHop: r.NextHop})
		}
	}
	return spec, nil
}

// legAddress is a router leg's first IPv4 address with its subnet's
// prefix ("10.0.0.1/24"), and that subnet.
func legAddress(leg network.RouterLeg) (string, network.Subnet) {
	for _, f := range leg.Port.FixedIPs {
		a, err := netip.ParseAddr(f.IPAddress)
		if err != nil || !a.Is4() {
			continue
		}
		for _, sn := range leg.Subnets {
			if sn.ID != f.SubnetID {
				continue
			}
			if p, err := netip.ParsePrefix(sn.CIDR); err == nil {
				return fmt.Sprintf("%s/%d", a, p.Bits()), sn
			}
		}
	}
	return "", network.Subnet{}
}

func is4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// Ports.

// syncPort pushes an instance port's security to the host it is bound to
// (removing it from the host it was on before, if another); a deleted or
// unbound port's security is removed. gone is the port as it was, for a
// deleted one.
func (s *Syncer) syncPort(ctx context.Context, id string, gone *network.Port, deleted bool) error {
	s.mu.Lock()
	was, pushed := s.portHost[id]
	s.mu.Unlock()
	var plan *network.PortPlan
	if !deleted {
		var err error
		plan, err = s.net().PortPlan(ctx, id)
		if fault.KindOf(err) == fault.NotFound {
			deleted = true
		} else if err != nil {
			return err
		}
	}
	target := ""
	if !deleted && isCompute(&plan.Port) && plan.Port.BindingHostID != "" {
		h, err := s.cfg.Hosts.GetByHostname(ctx, plan.Port.BindingHostID)
		if fault.KindOf(err) == fault.NotFound {
			s.log.Warn("port bound to an unknown host", "port_id", id, "binding_host_id", plan.Port.BindingHostID)
		} else if err != nil {
			return err
		} else {
			target = h.ID
		}
	}
	if target == "" {
		// Deleted, unbound or no longer an instance's: remove it where
		// it was put (or, for a deleted port this Syncer did not push,
		// from the host it was bound to).
		from := was
		if !pushed && gone != nil && gone.BindingHostID != "" {
			if h, err := s.cfg.Hosts.GetByHostname(ctx, gone.BindingHostID); err == nil {
				from, pushed = h.ID, true
			}
		}
		if !pushed {
			return nil
		}
		if err := s.call(ctx, from, func(ctx context.Context, c *hosts.Client) error { return c.DeletePortSecurity(ctx, id) }); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.portHost, id)
		s.mu.Unlock()
		return nil
	}
	spec := portSecuritySpec(plan)
	if err := s.call(ctx, target, func(ctx context.Context, c *hosts.Client) error { return c.ApplyPortSecurity(ctx, spec) }); err != nil {
		return err
	}
	if pushed && was != target {
		if err := s.call(ctx, was, func(ctx context.Context, c *hosts.Client) error { return c.DeletePortSecurity(ctx, id) }); err != nil {
			s.log.Warn("removing a port's security from its former host failed", "port_id", id, "host_id", was, "err", err)
		}
	}
	s.mu.Lock()
	s.portHost[id] = target
	s.mu.Unlock()
	return nil
}

// portSecuritySpec converts a plan.
func portSecuritySpec(plan *network.PortPlan) agentapi.PortSecuritySpec {
	p := plan.Port
	spec := agentapi.PortSecuritySpec{PortID: p.ID, TapName: TapName(p.ID), MAC: p.MACAddress,
		PortSecurityEnabled: plan.PortSecurity}
	for _, f := range p.FixedIPs {
		if is4(f.IPAddress) {
			spec.IPs = append(spec.IPs, f.IPAddress)
		}
	}
	if !plan.PortSecurity {
		return spec
	}
	for _, ap := range p.AllowedAddressPairs {
		a := agentapi.AddressPair{IPAddress: ap.IPAddress}
		if !strings.EqualFold(ap.MACAddress, p.MACAddress) {
			a.MACAddress = ap.MACAddress
		}
		if pfx, err := netip.ParsePrefix(ap.IPAddress); err == nil && !pfx.Addr().Is4() {
			continue
		} else if err != nil && !is4(ap.IPAddress) {
			continue
		}
		spec.AllowedAddressPairs = append(spec.AllowedAddressPairs, a)
	}
	for _, r := range plan.Rules {
		base := agentapi.SecurityRule{Direction: r.Direction, EtherType: r.Ethertype, Protocol: protocolName(r.Protocol),
			PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax}
		if r.AnyRemote {
			spec.Rules = append(spec.Rules, base)
			continue
		}
		// A remote group with no members matches nothing: no rule.
		for _, rem := range r.Remotes {
			sr := base
			sr.RemoteIPPrefix = rem
			spec.Rules = append(spec.Rules, sr)
		}
	}
	return spec
}

// protocolName renders a rule's protocol number the way the agent takes it.
func protocolName(n int) string {
	switch n {
	case -1:
		return ""
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(n)
}

// syncGroup queues every instance port in group id or in a group whose
// rules name id as their remote group.
func (s *Syncer) syncGroup(ctx context.Context, id string) error {
	sys := s.sysCtx(ctx)
	groups := map[string]bool{id: true}
	rules, _, err := s.net().ListSecurityGroupRules(sys, network.ListOptions{})
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.RemoteGroupID == id {
			groups[r.SecurityGroupID] = true
		}
	}
	ports, _, err := s.net().ListPorts(sys, network.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range ports {
		if !isCompute(&p) {
			continue
		}
		for _, g := range p.SecurityGroups {
			if groups[g] {
				s.enqueue(task{kind: kindPort, id: p.ID})
				break
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
