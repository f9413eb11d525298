package netplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where iproute2 keeps named namespaces.
const netnsDir = "/var/run/netns"

// system is everything the plane does to the kernel besides iptables:
// links and addresses through netlink, namespaces through iproute2 (which
// owns the /var/run/netns bind mounts), processes.
type system struct {
	ip string
}

func (s *system) run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, s.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name))
	return err == nil
}

// listNS returns the named namespaces.
func listNS() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// ensureNS creates the namespace with lo up; created reports a new one.
func (s *system) ensureNS(ctx context.Context, name string) (created bool, err error) {
	if !nsExists(name) {
		if err := s.run(ctx, "netns", "add", name); err != nil {
			return false, err
		}
		created = true
	}
	h, err := nsHandle(name)
	if err != nil {
		return created, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return created, fmt.Errorf("lo up in %s: %w", name, err)
	}
	return created, nil
}

func (s *system) deleteNS(ctx context.Context, name string) error {
	if !nsExists(name) {
		return nil
	}
	return s.run(ctx, "netns", "del", name)
}

// nsHandle opens a netlink handle inside a named namespace.
func nsHandle(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return h, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ensureBridge creates (or adopts) an up bridge; created reports a new one.
func ensureBridge(name string, mtu int) (created bool, err error) {
	l, err := netlink.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}
	if err != nil {
		la := netlink.NewLinkAttrs()
		la.Name = name
		if mtu > 0 {
			la.MTU = mtu
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return false, fmt.Errorf("add bridge %s: %w", name, err)
		}
		created = true
		if l, err = netlink.LinkByName(name); err != nil {
			return created, fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if l.Type() != "bridge" {
		return created, fmt.Errorf("%s exists and is a %s, not a bridge", name, l.Type())
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return created, fmt.Errorf("bridge %s mtu: %w", name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return created, fmt.Errorf("bridge %s up: %w", name, err)
	}
	return created, nil
}

// deleteLink removes a host link; a missing one is fine.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}

// leg is a veth pair with one end (Inside) in a namespace and the other
// (Outside) a port of a host bridge.
type leg struct {
	NS      string
	Inside  string
	Outside string
	Bridge  string
	MAC     string // the inside end's MAC; "" keeps the kernel's
	MTU     int
}

// ensureLeg creates the veth pair when either end is missing, moves the
// inside end into the namespace, and (re)asserts MAC, MTU, master and up.
func ensureLeg(l leg) (created bool, err error) {
	h, err := nsHandle(l.NS)
	if err != nil {
		return false, err
	}
	defer h.Close()
	// A pair this call made but could not finish goes now, synchronously:
	// left to the namespace's deletion, the kernel would remove the host
	// end only some time later.
	defer func() {
		if err != nil && created {
			_ = deleteLink(l.Outside)
		}
	}()
	in, inErr := h.LinkByName(l.Inside)
	out, outErr := netlink.LinkByName(l.Outside)
	if inErr != nil || outErr != nil {
		// Half a pair is useless: rebuild both ends.
		if inErr == nil {
			_ = h.LinkDel(in)
		}
		if outErr == nil {
			_ = netlink.LinkDel(out)
		}
		la := netlink.NewLinkAttrs()
		la.Name = l.Outside
		if l.MTU > 0 {
			la.MTU = l.MTU
		}
		v := &netlink.Veth{LinkAttrs: la, PeerName: l.Inside}
		if l.MTU > 0 {
			v.PeerMTU = uint32(l.MTU)
		}
		if err := netlink.LinkAdd(v); err != nil {
			return false, fmt.Errorf("add veth %s/%s: %w", l.Outside, l.Inside, err)
		}
		created = true
		peer, err := netlink.LinkByName(l.Inside)
		if err != nil {
			return created, err
		}
		ns, err := netns.GetFromName(l.NS)
		if err != nil {
			return created, err
		}
		err = netlink.LinkSetNsFd(peer, int(ns))
		ns.Close()
		if err != nil {
			return created, fmt.Errorf("move %s into %s: %w", l.Inside, l.NS, err)
		}
		if in, err = h.LinkByName(l.Inside); err != nil {
			return created, err
		}
		if out, err = netlink.LinkByName(l.Outside); err != nil {
			return created, err
		}
	}
	if l.MAC != "" && in.Attrs().HardwareAddr.String() != l.MAC {
		hw, _ := net.ParseMAC(l.MAC)
		if err := h.LinkSetHardwareAddr(in, hw); err != nil {
			return created, fmt.Errorf("set mac of %s: %w", l.Inside, err)
		}
	}
	if l.MTU > 0 {
		if in.Attrs().MTU != l.MTU {
			if err := h.LinkSetMTU(in, l.MTU); err != nil {
				return created, err
			}
		}
		if out.Attrs().MTU != l.MTU {
			if err := netlink.LinkSetMTU(out, l.MTU); err != nil {
				return created, err
			}
		}
	}
	br, err := netlink.LinkByName(l.Bridge)
	if err != nil {
		return created, fmt.Errorf("bridge %s: %w", l.Bridge, err)
	}
	if out.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(out, br); err != nil {
			return created, fmt.Errorf("attach %s to %s: %w", l.Outside, l.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(out); err != nil {
		return created, err
	}
	if err := h.LinkSetUp(in); err != nil {
		return created, err
	}
	return created, nil
}

// syncAddrs makes link hold exactly the IPv4 addresses want (IPv6
// link-local addresses are the kernel's and left alone).
func syncAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
	}
	wantSet := map[netip.Prefix]bool{}
	for _, p := range want {
		wantSet[p] = true
	}
	haveSet := map[netip.Prefix]bool{}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip, ones)
		haveSet[p] = true
		if !wantSet[p] {
			if err := h.AddrDel(link, &a); err != nil {
				return fmt.Errorf("remove %s from %s: %w", p, link.Attrs().Name, err)
			}
		}
	}
	for _, p := range want {
		if haveSet[p] {
			continue
		}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
			return fmt.Errorf("add %s to %s: %w", p, link.Attrs().Name, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

// writeFileAtomic replaces path so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
