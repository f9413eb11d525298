package network

// IP address management as pure functions: CIDR and pool validation,
// default pools, the next free address and SLAAC addresses. The store
// calls them inside the allocating transaction.

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// IPv6 address and router-advertisement modes.
const (
	ModeSLAAC           = "slaac"
	ModeDHCPv6Stateful  = "dhcpv6-stateful"
	ModeDHCPv6Stateless = "dhcpv6-stateless"
)

// pool is an inclusive address range.
type pool struct{ start, end netip.Addr }

func (p pool) contains(a netip.Addr) bool {
	return a.Compare(p.start) >= 0 && a.Compare(p.end) <= 0
}

func (p pool) String() string { return p.start.String() + "-" + p.end.String() }

// size is the number of addresses in p.
func (p pool) size() *big.Int {
	s := new(big.Int).SetBytes(p.start.AsSlice())
	e := new(big.Int).SetBytes(p.end.AsSlice())
	return e.Sub(e, s).Add(e, big.NewInt(1))
}

// parseCIDR validates a subnet CIDR and returns it with host bits cleared,
// as Neutron stores it ("10.0.0.5/24" becomes "10.0.0.0/24"). A prefix
// that leaves no address to allocate, a network of everything, multicast,
// loopback and a version other than ipVersion (when non-zero) are refused.
func parseCIDR(s string, ipVersion int) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.Prefix{}, invalidInput("'%s' isn't a recognized IP subnet cidr, '%s/%d' is recommended", s, a, a.BitLen())
		}
		return netip.Prefix{}, invalidInput("'%s' is not a valid IP subnet", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, invalidInput("'%s' is not a valid IP subnet", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, invalidInput("'%s' is not a valid IP subnet", s)
	}
	p = p.Masked()
	v := 4
	if p.Addr().Is6() {
		v = 6
	}
	if ipVersion != 0 && ipVersion != v {
		return netip.Prefix{}, invalidInput("cidr '%s' does not match the ip_version '%d'", s, ipVersion)
	}
	switch {
	case v == 4 && p.Bits() < 8, v == 6 && p.Bits() < 8:
		return netip.Prefix{}, invalidInput("'%s' is too large to be a subnet", s)
	case v == 4 && p.Bits() > 30, v == 6 && p.Bits() > 126:
		return netip.Prefix{}, invalidInput("'%s' is too small: its prefix leaves no address to allocate", s)
	case p.Addr().IsMulticast():
		return netip.Prefix{}, invalidInput("Multicast IP subnet is not supported")
	case p.Addr().IsLoopback():
		return netip.Prefix{}, invalidInput("Loopback IP subnet is not supported")
	}
	return p, nil
}

// parseAddr parses an IP address in any of its spellings and returns it
// canonical; IPv4-mapped IPv6 addresses become IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseAnyPrefix parses a CIDR that need not be a subnet (a route
// destination, a remote prefix, an address pair): host bits are cleared
// and a bare address becomes a /32 or /128 when allowBare is set.
func parseAnyPrefix(s string, allowBare bool) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		if !allowBare {
			return netip.Prefix{}, false
		}
		a, ok := parseAddr(s)
		if !ok {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// lastAddr is the highest address in p (IPv4's broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// usableRange is the range of addresses a subnet can give to ports: all
// of it but the network address and, for IPv4, the broadcast address.
func usableRange(p netip.Prefix) pool {
	first := p.Addr().Next()
	last := lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev()
	}
	return pool{first, last}
}

// defaultPools are Neutron's default allocation pools: the usable range
// minus the gateway.
func defaultPools(p netip.Prefix, gw netip.Addr) []pool {
	u := usableRange(p)
	if !gw.IsValid() || !u.contains(gw) {
		return []pool{u}
	}
	var out []pool
	if gw != u.start {
		out = append(out, pool{u.start, gw.Prev()})
	}
	if gw != u.end {
		out = append(out, pool{gw.Next(), u.end})
	}
	return out
}

// checkPools validates requested allocation pools against the subnet and
// its gateway and returns them sorted.
func checkPools(in []AllocationPool, p netip.Prefix, gw netip.Addr) ([]pool, error) {
	u := usableRange(p)
	out := make([]pool, 0, len(in))
	for _, ap := range in {
		s, ok1 := parseAddr(ap.Start)
		e, ok2 := parseAddr(ap.End)
		if !ok1 || !ok2 || s.Is4() != p.Addr().Is4() || e.Compare(s) < 0 {
			return nil, fault400("InvalidAllocationPool", "The allocation pool %s-%s is not valid.", ap.Start, ap.End)
		}
		pl := pool{s, e}
		if !u.contains(s) || !u.contains(e) {
			return nil, fault400("OutOfBoundsAllocationPool", "The allocation pool %s spans beyond the subnet cidr %s.", pl, p)
		}
		out = append(out, pl)
	}
	slices.SortFunc(out, func(a, b pool) int { return a.start.Compare(b.start) })
	for i := 1; i < len(out); i++ {
		if out[i].start.Compare(out[i-1].end) <= 0 {
			return nil, fault409("OverlappingAllocationPools", "Found overlapping allocation pools: %s %s for subnet %s.",
				out[i-1], out[i], p)
		}
	}
	if gw.IsValid() {
		for _, pl := range out {
			if pl.contains(gw) {
				return nil, fault409("GatewayConflictWithAllocationPools",
					"Gateway ip %s conflicts with allocation pool %s.", gw, pl)
			}
		}
	}
	return out, nil
}

// firstFree returns the lowest address of pools that used does not hold.
// It looks at no more than len(used)+len(pools) addresses.
func firstFree(pools []pool, used map[netip.Addr]bool) (netip.Addr, bool) {
	for _, pl := range pools {
		for a := pl.start; a.IsValid(); a = a.Next() {
			if !used[a] {
				return a, true
			}
			if a == pl.end {
				break
			}
		}
	}
	return netip.Addr{}, false
}

// nextInPools is the pool address after a, wrapping from the end of the
// last pool to the start of the first; an address outside every pool is
// followed by the first pool address above it.
func nextInPools(pools []pool, a netip.Addr) netip.Addr {
	for i, p := range pools {
		if a.Less(p.start) {
			return p.start
		}
		if p.contains(a) {
			if a != p.end {
				return a.Next()
			}
			if i+1 < len(pools) {
				return pools[i+1].start
			}
			return pools[0].start
		}
	}
	return pools[0].start
}

// eui64 is the SLAAC address of mac in a /64.
func eui64(p netip.Prefix, mac string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, fmt.Errorf("bad MAC %q", mac)
	}
	b := p.Masked().Addr().As16()
	b[8] = hw[0] ^ 0x02
	b[9], b[10] = hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b), nil
}

// autoAddressed reports whether ports get their address on sn from SLAAC
// (or stateless DHCPv6) rather than from a pool.
func autoAddressed(sn *Subnet) bool {
	return sn.IPVersion == 6 && (sn.IPv6AddressMode == ModeSLAAC || sn.IPv6AddressMode == ModeDHCPv6Stateless)
}

// subnetPools parses a stored subnet's pools.
func subnetPools(sn *Subnet) []pool {
	out := make([]pool, 0, len(sn.AllocationPools))
	for _, ap := range sn.AllocationPools {
		s, ok1 := parseAddr(ap.Start)
		e, ok2 := parseAddr(ap.End)
		if ok1 && ok2 {
			out = append(out, pool{s, e})
		}
	}
	return out
}

func toAllocationPools(ps []pool) []AllocationPool {
	out := make([]AllocationPool, len(ps))
	for i, p := range ps {
		out[i] = AllocationPool{Start: p.start.String(), End: p.end.String()}
	}
	return out
}

// mustPrefix parses a stored CIDR, which is always valid.
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
