package netplane

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// externalChain fences an external bridge in the host's FORWARD chain;
// named after the bridge it guards (at most 11+15 characters of 28).
func externalChain(bridge string) string { return "nimbus-ext-" + bridge }

// externalRules keep external traffic on the external bridge: routers
// reach each other and the host (INPUT is untouched, and the host reaches
// floating IPs through OUTPUT), but the host forwards nothing from or to
// the bridge, so nothing leaves for the outside world.
func externalRules(bridge string) []rule {
	return []rule{
		r("-i", bridge, "-o", bridge, "-j", "ACCEPT"),
		r("-i", bridge, "-j", "DROP"),
		r("-o", bridge, "-j", "DROP"),
	}
}

// EnsureExternal converges the external bridge: up, holding the host's
// gateway address (ExternalCIDR) and fenced so the host forwards nothing
// between it and any other interface. The host's default route and other
// interfaces are never touched.
func (p *Plane) EnsureExternal(ctx context.Context) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	rev := &reverter{}
	defer rev.Fail()
	br := p.cfg.ExternalBridge
	created, err := ensureBridge(br, 0)
	if err != nil {
		return err
	}
	if created {
		rev.Add(func() { _ = deleteLink(br) })
	}
	l, err := netlink.LinkByName(br)
	if err != nil {
		return err
	}
	pfx, _ := parseIPCIDR(p.cfg.ExternalCIDR)
	if err := syncAddrs(netlinkHost(), l, []netip.Prefix{pfx}); err != nil {
		return err
	}
	if err := ensureExternalRules(p.host, br); err != nil {
		return fmt.Errorf("external fence: %w", err)
	}
	rev.Success()
	return nil
}

func ensureExternalRules(ipt iptables, bridge string) error {
	chain := externalChain(bridge)
	if _, err := syncChain(ipt, filterTable, chain, externalRules(bridge)); err != nil {
		return err
	}
	return ensureJump(ipt, filterTable, "FORWARD", true, r("-j", chain))
}

// DeleteExternal removes the external bridge and its fence.
func (p *Plane) DeleteExternal(ctx context.Context) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	chain := externalChain(p.cfg.ExternalBridge)
	if err := deleteRuleAll(p.host, filterTable, "FORWARD", r("-j", chain)); err != nil {
		return err
	}
	if err := deleteChain(p.host, filterTable, chain); err != nil {
		return err
	}
	return deleteLink(p.cfg.ExternalBridge)
}

// netlinkHost is a handle on the host's own namespace.
func netlinkHost() *netlink.Handle { return &netlink.Handle{} }
