package netplane

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// validateNetwork checks every field of spec that reaches a device name, a
// file or a command line, and fills Bridge when empty. Errors are Invalid.
func validateNetwork(spec *agentapi.NetworkSpec) error {
	if err := validID("network", spec.ID); err != nil {
		return err
	}
	if spec.Bridge == "" {
		spec.Bridge = bridgeName(spec.ID)
	}
	if spec.Bridge != bridgeName(spec.ID) {
		return fault.Invalidf("bridge of network %s must be %s", spec.ID, bridgeName(spec.ID))
	}
	if spec.MTU != 0 && (spec.MTU < 68 || spec.MTU > 65535) {
		return fault.Invalidf("invalid MTU %d", spec.MTU)
	}
	switch spec.Type {
	case agentapi.NetworkTypeVXLAN:
		if spec.SegmentationID < 1 || spec.SegmentationID > 1<<24-1 {
			return fault.Invalidf("invalid VXLAN VNI %d", spec.SegmentationID)
		}
		if len(spec.VXLANPeers) > 0 {
			if _, err := parseIPv4(spec.VXLANLocalIP); err != nil {
				return fault.Invalidf("VXLAN peers need a valid local IP")
			}
		}
		for _, peer := range spec.VXLANPeers {
			if _, err := parseIPv4(peer); err != nil {
				return err
			}
		}
	case agentapi.NetworkTypeVLAN:
		if spec.SegmentationID < 1 || spec.SegmentationID > 4094 {
			return fault.Invalidf("invalid VLAN ID %d", spec.SegmentationID)
		}
		fallthrough
	case agentapi.NetworkTypeFlat:
		if err := validIfName(spec.PhysicalInterface); err != nil {
			return err
		}
	case agentapi.NetworkTypeLocal:
	default:
		return fault.Invalidf("unknown network type %q", spec.Type)
	}
	if spec.DHCPPort != nil {
		if err := validID("port", spec.DHCPPort.ID); err != nil {
			return err
		}
		if _, err := parseMAC(spec.DHCPPort.MAC); err != nil {
			return err
		}
	}
	var dhcpNets []agentapi.SubnetSpec
	for _, s := range spec.Subnets {
		if err := validID("subnet", s.ID); err != nil {
			return err
		}
		n, err := parseNet(s.CIDR)
		if err != nil {
			return err
		}
		for _, a := range []string{s.GatewayIP, s.DHCPPortIP, s.DHCPStart, s.DHCPEnd} {
			if a == "" {
				continue
			}
			ip, err := parseIPv4(a)
			if err != nil {
				return err
			}
			if !n.Contains(ip) {
				return fault.Invalidf("address %s is outside subnet %s", ip, n)
			}
		}
		for _, d := range s.DNSNameservers {
			if _, err := parseIPv4(d); err != nil {
				return err
			}
		}
		if s.EnableDHCP {
			if spec.DHCPPort != nil && s.DHCPPortIP == "" {
				return fault.Invalidf("subnet %s has DHCP enabled but no DHCP port address", s.ID)
			}
			dhcpNets = append(dhcpNets, s)
		}
	}
	seen := map[string]bool{}
	for _, h := range spec.DHCPHosts {
		mac, err := parseMAC(h.MAC)
		if err != nil {
			return err
		}
		if seen[mac] {
			return fault.Invalidf("MAC %s appears twice in the DHCP hosts", mac)
		}
		seen[mac] = true
		ip, err := parseIPv4(h.IP)
		if err != nil {
			return err
		}
		if h.Hostname != "" {
			if err := validHostname(h.Hostname); err != nil {
				return err
			}
		}
		in := false
		for _, s := range dhcpNets {
			n, _ := parseNet(s.CIDR)
			in = in || n.Contains(ip)
		}
		if !in && len(dhcpNets) > 0 {
			return fault.Invalidf("DHCP host address %s is in no DHCP-enabled subnet", ip)
		}
	}
	return nil
}

// ApplyNetwork converges one tenant network on this host: its bridge, its
// VXLAN device and peers (or its flat/VLAN uplink), and its DHCP namespace
// and dnsmasq. A failure undoes what this call created. Errors: Invalid for
// a bad spec or a missing physical interface, Conflict for a physical
// interface that carries addresses or belongs to another bridge.
func (p *Plane) ApplyNetwork(ctx context.Context, spec agentapi.NetworkSpec) error {
	if err := validateNetwork(&spec); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	rev := &reverter{}
	defer rev.Fail()

	created, err := ensureBridge(spec.Bridge, spec.MTU)
	if err != nil {
		return err
	}
	if created {
		rev.Add(func() { _ = deleteLink(spec.Bridge) })
	}
	if err := p.ensureUplink(spec, rev); err != nil {
		return err
	}
	dc := buildDHCP(p.cfg.StateDir, spec)
	if dc == nil {
		if err := p.deleteDHCP(ctx, spec.ID); err != nil {
			return err
		}
		rev.Success()
		return nil
	}
	nsNew, err := p.sys.ensureNS(ctx, dc.NS)
	if err != nil {
		return err
	}
	if nsNew {
		rev.Add(func() { _ = p.sys.deleteNS(context.Background(), dc.NS) })
	}
	if err := p.syncDHCPPort(dc, spec); err != nil {
		return err
	}
	if err := p.ensureDnsmasq(ctx, dc); err != nil {
		return err
	}
	rev.Success()
	return nil
}

// syncDHCPPort converges the DHCP port's veth and addresses, removing
// devices of a DHCP port that was replaced.
func (p *Plane) syncDHCPPort(dc *dhcpConfig, spec agentapi.NetworkSpec) error {
	h, err := nsHandle(dc.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if name := l.Attrs().Name; name != "lo" && name != dc.Iface {
			_ = h.LinkDel(l)
		}
	}
	if _, err := ensureLeg(leg{NS: dc.NS, Inside: dc.Iface, Outside: dc.Peer, Bridge: spec.Bridge, MAC: dc.MAC, MTU: spec.MTU}); err != nil {
		return err
	}
	in, err := h.LinkByName(dc.Iface)
	if err != nil {
		return err
	}
	return syncAddrs(h, in, dc.Addrs)
}

// ensureUplink attaches the network's VXLAN device (with an FDB entry per
// peer) or its physical/VLAN interface to the bridge.
func (p *Plane) ensureUplink(spec agentapi.NetworkSpec, rev *reverter) error {
	br, err := netlink.LinkByName(spec.Bridge)
	if err != nil {
		return err
	}
	var dev netlink.Link
	switch spec.Type {
	case agentapi.NetworkTypeVXLAN:
		name := vxlanName(spec.SegmentationID)
		dev, err = netlink.LinkByName(name)
		if isNotFound(err) {
			la := netlink.NewLinkAttrs()
			la.Name = name
			if spec.MTU > 0 {
				la.MTU = spec.MTU
			}
			vx := &netlink.Vxlan{LinkAttrs: la, VxlanId: spec.SegmentationID, Port: 4789, Learning: true}
			if spec.VXLANLocalIP != "" {
				vx.SrcAddr = net.ParseIP(spec.VXLANLocalIP)
			}
			if err := netlink.LinkAdd(vx); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
			rev.Add(func() { _ = deleteLink(name) })
			dev, err = netlink.LinkByName(name)
		}
		if err != nil {
			return err
		}
		if err := syncFloodPeers(dev, spec.VXLANPeers); err != nil {
			return err
		}
		// Head-end replication: an all-zero FDB entry per peer floods BUM
		// traffic to each.
		for _, peer := range spec.VXLANPeers {
			n := &netlink.Neigh{
				LinkIndex: dev.Attrs().Index, Family: 7, // AF_BRIDGE
				State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
				HardwareAddr: net.HardwareAddr{0, 0, 0, 0, 0, 0}, IP: net.ParseIP(peer),
			}
			if err := netlink.NeighAppend(n); err != nil && !os.IsExist(err) {
				return fmt.Errorf("fdb %s via %s: %w", peer, name, err)
			}
		}
	case agentapi.NetworkTypeVLAN:
		name := fmt.Sprintf("%s.%d", short(spec.PhysicalInterface, 10), spec.SegmentationID)
		dev, err = netlink.LinkByName(name)
		if isNotFound(err) {
			parent, perr := netlink.LinkByName(spec.PhysicalInterface)
			if perr != nil {
				return fault.Invalidf("physical interface %s not found", spec.PhysicalInterface)
			}
			la := netlink.NewLinkAttrs()
			la.Name, la.ParentIndex = name, parent.Attrs().Index
			if err := netlink.LinkAdd(&netlink.Vlan{LinkAttrs: la, VlanId: spec.SegmentationID}); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
			rev.Add(func() { _ = deleteLink(name) })
			dev, err = netlink.LinkByName(name)
		}
		if err != nil {
			return err
		}
	case agentapi.NetworkTypeFlat:
		if dev, err = netlink.LinkByName(spec.PhysicalInterface); err != nil {
			return fault.Invalidf("physical interface %s not found", spec.PhysicalInterface)
		}
		// Enslaving a NIC that carries the host's addresses (or belongs to
		// another bridge) would cut the host off: refuse instead.
		if m := dev.Attrs().MasterIndex; m != 0 && m != br.Attrs().Index {
			return fault.Conflictf("physical interface %s is attached elsewhere", spec.PhysicalInterface)
		}
		if addrs, err := netlink.AddrList(dev, netlink.FAMILY_V4); err != nil || len(addrs) > 0 {
			return fault.Conflictf("physical interface %s carries IPv4 addresses", spec.PhysicalInterface)
		}
	default:
		return removeStaleUplinks(br, "")
	}
	if err := removeStaleUplinks(br, dev.Attrs().Name); err != nil {
		return err
	}
	if dev.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(dev, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", dev.Attrs().Name, spec.Bridge, err)
		}
	}
	return netlink.LinkSetUp(dev)
}

// DeleteNetwork removes a network's dnsmasq, DHCP namespace, VXLAN device
// and bridge. Deleting a network that is not there succeeds.
func (p *Plane) DeleteNetwork(ctx context.Context, id string) error {
	if err := validID("network", id); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	return p.deleteNetwork(ctx, id)
}

func (p *Plane) deleteNetwork(ctx context.Context, id string) error {
	if err := p.deleteDHCP(ctx, id); err != nil {
		return err
	}
	return deleteBridgeAndUplinks(bridgeName(id))
}

// deleteBridgeAndUplinks removes the bridge and the VXLAN/VLAN devices this
// plane attached to it (a flat network's physical NIC is only detached).
func deleteBridgeAndUplinks(bridge string) error {
	br, err := netlink.LinkByName(bridge)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		switch l.Type() {
		case "vxlan", "vlan":
			_ = netlink.LinkDel(l)
		}
	}
	return netlink.LinkDel(br)
}

// deleteDHCP stops the network's dnsmasq and removes its namespace and files.
func (p *Plane) deleteDHCP(ctx context.Context, netID string) error {
	dir := dhcpDir(p.cfg.StateDir, netID)
	if pid, _ := dnsmasqPID(dir + "/pid"); pid != 0 {
		stopProcess(pid)
	}
	ns := dhcpNS(netID)
	if nsExists(ns) {
		stopNSProcesses(ns)
		if err := p.sys.deleteNS(ctx, ns); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// removeStaleUplinks deletes VXLAN/VLAN devices on the bridge other than
// keep (a network whose segmentation changed).
func removeStaleUplinks(br netlink.Link, keep string) error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index && l.Attrs().Name != keep && (l.Type() == "vxlan" || l.Type() == "vlan") {
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("remove stale uplink %s: %w", l.Attrs().Name, err)
			}
		}
	}
	return nil
}

// syncFloodPeers removes the all-zero FDB entries of peers that left.
func syncFloodPeers(dev netlink.Link, peers []string) error {
	fdb, err := netlink.NeighList(dev.Attrs().Index, 7) // AF_BRIDGE
	if err != nil {
		return fmt.Errorf("fdb of %s: %w", dev.Attrs().Name, err)
	}
	want := map[string]bool{}
	for _, p := range peers {
		a, _ := parseIPv4(p)
		want[a.String()] = true
	}
	for _, n := range fdb {
		if n.IP == nil || n.HardwareAddr.String() != "00:00:00:00:00:00" || want[n.IP.String()] {
			continue
		}
		if err := netlink.NeighDel(&n); err != nil {
			return fmt.Errorf("remove peer %s from %s: %w", n.IP, dev.Attrs().Name, err)
		}
	}
	return nil
}
