package netplane

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"

	"github.com/vishvananda/netlink"
)

// Inventory is what the plane finds on the host, by owner. Names carry
// only as much of an ID as the kernel allows (a bridge holds 11
// characters, a chain 10), so Cleanup matches on prefixes.
type Inventory struct {
	// DHCPNetworks are the networks with a qdhcp- namespace (full IDs).
	DHCPNetworks []string
	// Bridges are the brq bridges.
	Bridges []string
	// Routers are the routers with a qrouter- namespace (full IDs).
	Routers []string
	// Ports are the (10-character) port ID prefixes with security chains.
	Ports []string
}

// Keep names the resources the controller still wants on this host.
type Keep struct {
	Networks []string
	Routers  []string
	Ports    []string
	// Func, when set, decides alone: Cleanup removes a resource found on
	// the host only when Func(kind, id) is false. Kind is "network",
	// "bridge", "router" or "port"; id is as Inventory reports it. It
	// scopes a cleanup to some owners (a test among parallel runs).
	Func func(kind, id string) bool
}

// keeps reports whether keep spares the resource of kind with id.
func (k Keep) keeps(kind, id string) bool {
	if k.Func != nil {
		return k.Func(kind, id)
	}
	switch kind {
	case "network":
		return slices.Contains(k.Networks, id)
	case "bridge":
		for _, n := range k.Networks {
			if bridgeName(n) == id {
				return true
			}
		}
		return false
	case "router":
		return slices.Contains(k.Routers, id)
	case "port":
		for _, pid := range k.Ports {
			if short(pid, 10) == id {
				return true
			}
		}
	}
	return false
}

// List returns the plane's resources found on the host.
func (p *Plane) List(ctx context.Context) (Inventory, error) {
	if err := p.lock(ctx); err != nil {
		return Inventory{}, err
	}
	defer p.unlock()
	return p.list()
}

func (p *Plane) list() (Inventory, error) {
	var inv Inventory
	nss, err := listNS()
	if err != nil {
		return inv, err
	}
	for _, ns := range nss {
		if id, ok := strings.CutPrefix(ns, prefixDHCPNS); ok {
			inv.DHCPNetworks = append(inv.DHCPNetworks, id)
		}
		if id, ok := strings.CutPrefix(ns, prefixRouteNS); ok {
			inv.Routers = append(inv.Routers, id)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return inv, err
	}
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, prefixBridge) && l.Type() == "bridge" {
			inv.Bridges = append(inv.Bridges, n)
		}
	}
	chains, err := p.host.ListChains(filterTable)
	if err != nil {
		return inv, err
	}
	for _, c := range chains {
		rest, ok := strings.CutPrefix(c, sgPrefix)
		if !ok || sharedSGChains[c] || len(rest) < 2 {
			continue
		}
		if id := rest[1:]; strings.ContainsRune("ios", rune(rest[0])) && !slices.Contains(inv.Ports, id) {
			inv.Ports = append(inv.Ports, id)
		}
	}
	return inv, nil
}

// Cleanup removes everything the plane finds that belongs to no resource in
// keep: router and DHCP namespaces (with their dnsmasqs and legs), bridges
// with their VXLAN/VLAN devices, DHCP state and security chains. It keeps
// going after a failure and returns all errors joined.
func (p *Plane) Cleanup(ctx context.Context, keep Keep) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	inv, err := p.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range inv.Routers {
		if !keep.keeps("router", id) {
			p.log.Info("removing stale router", "router", id)
			errs = append(errs, p.deleteRouter(ctx, id))
		}
	}
	for _, id := range inv.DHCPNetworks {
		if !keep.keeps("network", id) {
			p.log.Info("removing stale DHCP", "network", id)
			errs = append(errs, p.deleteDHCP(ctx, id))
		}
	}
	if ents, err := os.ReadDir(filepath.Join(p.cfg.StateDir, "dhcp")); err == nil {
		for _, e := range ents {
			if validID("network", e.Name()) == nil && !keep.keeps("network", e.Name()) {
				errs = append(errs, p.deleteDHCP(ctx, e.Name()))
			}
		}
	}
	for _, br := range inv.Bridges {
		if !keep.keeps("bridge", br) {
			p.log.Info("removing stale bridge", "bridge", br)
			errs = append(errs, deleteBridgeAndUplinks(br))
		}
	}
	errs = append(errs, deleteOrphanVXLANs())
	for _, id := range inv.Ports {
		if !keep.keeps("port", id) {
			p.log.Info("removing stale port chains", "port", id)
			errs = append(errs, removePortSecurity(p.host, id))
		}
	}
	return errors.Join(errs...)
}

// deleteOrphanVXLANs removes vxlan- devices attached to no bridge.
func deleteOrphanVXLANs() error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefixVXLAN) && l.Type() == "vxlan" && l.Attrs().MasterIndex == 0 {
			errs = append(errs, netlink.LinkDel(l))
		}
	}
	return errors.Join(errs...)
}

// Prune is Cleanup with the control plane's keep lists: it removes what
// was deleted while this host was away.
func (p *Plane) Prune(ctx context.Context, keep agentapi.NetworkKeep) error {
	return p.Cleanup(ctx, Keep{Networks: keep.Networks, Routers: keep.Routers, Ports: keep.Ports})
}
