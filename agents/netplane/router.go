package netplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The nat chains of a router namespace, named as neutron's L3 agent names
// them.
const (
	chainL3Pre        = "neutron-l3-agent-PREROUTING"
	chainL3Out        = "neutron-l3-agent-OUTPUT"
	chainL3Post       = "neutron-l3-agent-POSTROUTING"
	chainL3Snat       = "neutron-l3-agent-snat"
	chainL3FloatSnat  = "neutron-l3-agent-float-snat"
	chainPostBottom   = "neutron-postrouting-bottom"
	rtprotStatic      = 4 // RTPROT_STATIC: the routes this plane owns
	routerTable       = "nat"
	ipForwardSysctl   = "/proc/sys/net/ipv4/ip_forward"
	routerChainPrefix = "neutron-"
)

// routerChains is the order the router's own chains are converged in
// (callees before callers).
var routerChains = []string{chainL3FloatSnat, chainL3Snat, chainPostBottom, chainL3Pre, chainL3Out, chainL3Post}

// routerJumps are the built-in chains' jumps into the router's chains.
var routerJumps = []struct {
	chain string
	spec  rule
}{
	{"PREROUTING", r("-j", chainL3Pre)},
	{"OUTPUT", r("-j", chainL3Out)},
	{"POSTROUTING", r("-j", chainL3Post)},
	{"POSTROUTING", r("-j", chainPostBottom)},
}

// validateRouter checks spec. Errors are Invalid.
func validateRouter(spec *agentapi.RouterSpec) error {
	if err := validID("router", spec.ID); err != nil {
		return err
	}
	for _, itf := range spec.Interfaces {
		if err := validID("port", itf.PortID); err != nil {
			return err
		}
		if _, err := parseMAC(itf.MAC); err != nil {
			return err
		}
		if _, err := parseIPCIDR(itf.IPCIDR); err != nil {
			return err
		}
		if err := validIfName(itf.Bridge); err != nil {
			return err
		}
		if itf.MTU != 0 && (itf.MTU < 68 || itf.MTU > 65535) {
			return fault.Invalidf("invalid MTU %d", itf.MTU)
		}
	}
	if gw := spec.Gateway; gw != nil {
		if err := validID("port", gw.PortID); err != nil {
			return err
		}
		if _, err := parseMAC(gw.MAC); err != nil {
			return err
		}
		p, err := parseIPCIDR(gw.IPCIDR)
		if err != nil {
			return err
		}
		if err := validIfName(gw.Bridge); err != nil {
			return err
		}
		up, err := parseIPv4(gw.GatewayIP)
		if err != nil {
			return err
		}
		if !p.Masked().Contains(up) {
			return fault.Invalidf("gateway %s is outside %s", up, p.Masked())
		}
	} else if len(spec.FloatingIPs) > 0 {
		return fault.Invalidf("floating IPs need a router gateway")
	}
	seen := map[netip.Addr]bool{}
	for _, f := range spec.FloatingIPs {
		fip, err := parseIPv4(f.FloatingIP)
		if err != nil {
			return err
		}
		if _, err := parseIPv4(f.FixedIP); err != nil {
			return err
		}
		if seen[fip] {
			return fault.Invalidf("floating IP %s appears twice", fip)
		}
		seen[fip] = true
	}
	for _, rt := range spec.Routes {
		if _, err := parseNet(rt.Destination); err != nil {
			return err
		}
		if _, err := parseIPv4(rt.NextHop); err != nil {
			return err
		}
	}
	return nil
}

// routerRules returns the nat rules of a router, chain by chain, exactly as
// neutron's L3 agent writes them (without its metadata and mangle marks).
func routerRules(spec agentapi.RouterSpec) map[string][]rule {
	out := map[string][]rule{}
	for _, c := range routerChains {
		out[c] = nil
	}
	out[chainL3Snat] = []rule{r("-j", chainL3FloatSnat)}
	out[chainPostBottom] = []rule{r("-j", chainL3Snat)}
	out[chainL3Pre] = []rule{metadataRedirect()}
	if spec.Gateway == nil {
		return out
	}
	qg := qgName(spec.Gateway.PortID)
	gwIP, _ := parseIPCIDR(spec.Gateway.IPCIDR)
	// Traffic between internal subnets is never NATed.
	out[chainL3Post] = []rule{r("!", "-i", qg, "!", "-o", qg, "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "ACCEPT")}
	for _, f := range spec.FloatingIPs {
		fip, _ := parseIPv4(f.FloatingIP)
		fixed, _ := parseIPv4(f.FixedIP)
		dnat := r("-d", fip.String()+"/32", "-j", "DNAT", "--to-destination", fixed.String())
		out[chainL3Pre] = append(out[chainL3Pre], dnat)
		out[chainL3Out] = append(out[chainL3Out], dnat)
		out[chainL3FloatSnat] = append(out[chainL3FloatSnat], r("-s", fixed.String()+"/32", "-j", "SNAT", "--to-source", fip.String()))
	}
	if spec.EnableSNAT {
		out[chainL3Snat] = append(out[chainL3Snat], r("-o", qg, "-j", "SNAT", "--to-source", gwIP.Addr().String()))
	}
	return out
}

// syncRouterRules converges the router namespace's nat table: its chains
// hold exactly the spec's rules, the built-in chains jump to them, and any
// other neutron- chain is removed.
func syncRouterRules(ipt iptables, spec agentapi.RouterSpec) error {
	want := routerRules(spec)
	for _, c := range routerChains {
		if _, err := syncChain(ipt, routerTable, c, want[c]); err != nil {
			return err
		}
	}
	for _, j := range routerJumps {
		if err := ensureJump(ipt, routerTable, j.chain, false, j.spec); err != nil {
			return err
		}
	}
	chains, err := ipt.ListChains(routerTable)
	if err != nil {
		return err
	}
	for _, c := range chains {
		if _, ok := want[c]; !ok && strings.HasPrefix(c, routerChainPrefix) {
			if err := deleteChain(ipt, routerTable, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// ApplyRouter converges one router: its namespace with forwarding on, a
// qr- leg per interface, the qg- gateway leg with the floating IPs as /32
// addresses and a default route upstream, extra routes and the NAT rules.
// Legs, addresses, routes and rules not in spec are removed. A failure
// undoes a namespace this call created. Errors: Invalid for a bad spec.
func (p *Plane) ApplyRouter(ctx context.Context, spec agentapi.RouterSpec) error {
	if err := validateRouter(&spec); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	rev := &reverter{}
	defer rev.Fail()

	ns := routerNS(spec.ID)
	created, err := p.sys.ensureNS(ctx, ns)
	if err != nil {
		return err
	}
	if created {
		rev.Add(func() { _ = p.sys.deleteNS(context.Background(), ns) })
	}
	if err := inNamespace(ns, func() error { return os.WriteFile(ipForwardSysctl, []byte("1"), 0o644) }); err != nil {
		return fmt.Errorf("ip_forward in %s: %w", ns, err)
	}
	if err := p.syncRouterLinks(ns, spec); err != nil {
		return err
	}
	if err := syncRouterRules(p.inNS(ns), spec); err != nil {
		return fmt.Errorf("nat rules of %s: %w", ns, err)
	}
	if err := p.ensureMetadataProxy(spec.ID); err != nil {
		return err
	}
	rev.Success()
	return nil
}

// syncRouterLinks converges the legs, their addresses and the routes.
func (p *Plane) syncRouterLinks(ns string, spec agentapi.RouterSpec) error {
	h, err := nsHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	wantAddrs := map[string][]netip.Prefix{}
	var legs []leg
	for _, itf := range spec.Interfaces {
		name := qrName(itf.PortID)
		mac, _ := parseMAC(itf.MAC)
		pfx, _ := parseIPCIDR(itf.IPCIDR)
		wantAddrs[name] = append(wantAddrs[name], pfx)
		legs = append(legs, leg{NS: ns, Inside: name, Outside: rtrPeer(name), Bridge: itf.Bridge, MAC: mac, MTU: itf.MTU})
	}
	var routes []*netlink.Route
	if gw := spec.Gateway; gw != nil {
		name := qgName(gw.PortID)
		mac, _ := parseMAC(gw.MAC)
		pfx, _ := parseIPCIDR(gw.IPCIDR)
		wantAddrs[name] = append(wantAddrs[name], pfx)
		for _, f := range spec.FloatingIPs {
			fip, _ := parseIPv4(f.FloatingIP)
			wantAddrs[name] = append(wantAddrs[name], netip.PrefixFrom(fip, 32))
		}
		legs = append(legs, leg{NS: ns, Inside: name, Outside: rtrPeer(name), Bridge: gw.Bridge, MAC: mac})
		up, _ := parseIPv4(gw.GatewayIP)
		routes = append(routes, &netlink.Route{Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: net.IP(up.AsSlice())})
	}
	for _, rt := range spec.Routes {
		dst, _ := parseNet(rt.Destination)
		hop, _ := parseIPv4(rt.NextHop)
		routes = append(routes, &netlink.Route{Dst: prefixNet(dst), Gw: net.IP(hop.AsSlice())})
	}
	// Legs of removed interfaces go first, with their peers.
	links, err := h.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		name := l.Attrs().Name
		if _, ok := wantAddrs[name]; !ok && name != "lo" {
			if err := h.LinkDel(l); err != nil {
				return fmt.Errorf("remove %s from %s: %w", name, ns, err)
			}
		}
	}
	for _, lg := range legs {
		if _, err := ensureLeg(lg); err != nil {
			return err
		}
		l, err := h.LinkByName(lg.Inside)
		if err != nil {
			return err
		}
		before, _ := h.AddrList(l, netlink.FAMILY_V4)
		if err := syncAddrs(h, l, wantAddrs[lg.Inside]); err != nil {
			return err
		}
		if strings.HasPrefix(lg.Inside, prefixRtrGW) {
			p.forgetFloatingIPs(ns, before, wantAddrs[lg.Inside])
		}
	}
	return syncRoutes(h, routes)
}

// forgetFloatingIPs drops the conntrack entries of floating IPs that left
// the gateway, so established sessions through them end as neutron's L3
// agent ends them. Best effort: without conntrack(8) only new sessions stop.
func (p *Plane) forgetFloatingIPs(ns string, before []netlink.Addr, want []netip.Prefix) {
	tool, err := exec.LookPath("conntrack")
	if err != nil {
		return
	}
	for _, a := range before {
		ones, _ := a.Mask.Size()
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ones != 32 || slices.Contains(want, netip.PrefixFrom(ip, 32)) {
			continue
		}
		for _, dir := range []string{"--orig-dst", "--reply-dst"} {
			// Exit status 1 means "no entries", not a failure.
			_ = exec.Command(p.cfg.IP, "netns", "exec", ns, tool, "-D", dir, ip.String()).Run()
		}
		p.log.Info("floating IP removed", "netns", ns, "ip", ip)
	}
}

// syncRoutes makes the namespace's static routes exactly want.
func syncRoutes(h *netlink.Handle, want []*netlink.Route) error {
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: rtprotStatic}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return err
	}
	key := func(rt *netlink.Route) string {
		dst := "0.0.0.0/0"
		if rt.Dst != nil {
			dst = rt.Dst.String()
		}
		return dst + " via " + rt.Gw.String()
	}
	wantSet := map[string]bool{}
	for _, rt := range want {
		wantSet[key(rt)] = true
	}
	haveSet := map[string]bool{}
	for i := range have {
		k := key(&have[i])
		haveSet[k] = true
		if !wantSet[k] {
			if err := h.RouteDel(&have[i]); err != nil {
				return fmt.Errorf("remove route %s: %w", k, err)
			}
		}
	}
	for _, rt := range want {
		if haveSet[key(rt)] {
			continue
		}
		rt.Protocol = rtprotStatic
		if err := h.RouteReplace(rt); err != nil {
			return fmt.Errorf("route %s: %w", key(rt), err)
		}
	}
	return nil
}

// DeleteRouter removes a router's namespace, which takes its legs (and
// their bridge-side peers), addresses, routes and rules with it. Deleting a
// router that is not there succeeds.
func (p *Plane) DeleteRouter(ctx context.Context, id string) error {
	if err := validID("router", id); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	return p.deleteRouter(ctx, id)
}

func (p *Plane) deleteRouter(ctx context.Context, id string) error {
	p.stopMetadataProxy(id)
	ns := routerNS(id)
	if !nsExists(ns) {
		return nil
	}
	stopNSProcesses(ns)
	return p.sys.deleteNS(ctx, ns)
}
