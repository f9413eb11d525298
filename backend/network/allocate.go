package network

// Address and MAC allocation for ports, run inside the transaction that
// creates or changes the port. Writers are serialised (BEGIN IMMEDIATE), so
// the free address found is still free at insert; the allocations table's
// primary key refuses a duplicate regardless.

import (
	"net/netip"
)

// FixedIPRequest asks for an address: on a subnet (any free address), a
// specific address (on whichever subnet holds it), or both.
type FixedIPRequest struct {
	SubnetID  string
	IPAddress string
}

// ipWant is one resolved request: a subnet and, optionally, the address.
type ipWant struct {
	sn   *Subnet
	addr netip.Addr
}

// resolveFixedIPs checks requested fixed IPs against the network's subnets.
func resolveFixedIPs(networkID string, subnets []Subnet, req []FixedIPRequest, owner string) ([]ipWant, error) {
	byID := make(map[string]*Subnet, len(subnets))
	for i := range subnets {
		byID[subnets[i].ID] = &subnets[i]
	}
	seen := map[string]bool{}
	out := make([]ipWant, 0, len(req))
	for _, r := range req {
		var w ipWant
		if r.SubnetID != "" {
			w.sn = byID[r.SubnetID]
			if w.sn == nil {
				return nil, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s",
					networkID, r.SubnetID)
			}
		}
		if r.IPAddress != "" {
			a, ok := parseAddr(r.IPAddress)
			if !ok {
				return nil, invalidInput("'%s' is not a valid IP address", r.IPAddress)
			}
			w.addr = a
			if w.sn == nil {
				for i := range subnets {
					if netip.MustParsePrefix(subnets[i].CIDR).Contains(a) {
						w.sn = &subnets[i]
						break
					}
				}
				if w.sn == nil {
					return nil, errInvalidIPForNetwork(r.IPAddress)
				}
			}
			p := netip.MustParsePrefix(w.sn.CIDR)
			if !p.Contains(a) || !usableRange(p).contains(a) {
				return nil, errInvalidIPForSubnet(r.IPAddress)
			}
			if autoAddressed(w.sn) && owner != OwnerRouterInterface {
				return nil, invalidInput("IPv6 address %s cannot be directly assigned to a port on subnet %s "+
					"since the subnet is configured for automatic addresses", a, w.sn.ID)
			}
			key := w.sn.ID + "|" + a.String()
			if seen[key] {
				return nil, invalidInput("Duplicate IP address '%s'", a)
			}
			seen[key] = true
		}
		if w.sn == nil {
			return nil, invalidInput("fixed_ips entries need a subnet_id or an ip_address")
		}
		out = append(out, w)
	}
	return out, nil
}

// autoWants is what a port gets when it asks for no particular address:
// one address from the first IPv4 subnet with room, one from the first
// stateful IPv6 subnet with room, and its SLAAC address on every
// automatically addressed IPv6 subnet, as Neutron does.
func (x *q) autoWants(networkID string, subnets []Subnet) ([]ipWant, error) {
	var out []ipWant
	for _, v := range []int{4, 6} {
		var candidates []*Subnet
		for i := range subnets {
			sn := &subnets[i]
			if sn.IPVersion == v && !autoAddressed(sn) {
				candidates = append(candidates, sn)
			}
		}
		if len(candidates) == 0 {
			continue
		}
		found := false
		for _, sn := range candidates {
			a, ok, err := x.nextFree(sn, nil)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, ipWant{sn: sn, addr: a})
				found = true
				break
			}
		}
		if !found {
			return nil, errIPGeneration(networkID)
		}
	}
	for i := range subnets {
		if autoAddressed(&subnets[i]) {
			out = append(out, ipWant{sn: &subnets[i]})
		}
	}
	return out, nil
}

// probeLimit bounds how many addresses nextFree tries one by one before it
// reads the subnet's whole allocation list.
const probeLimit = 32

// nextFree finds a free pool address of sn, not counting those in also
// (chosen earlier for the same port), and records it as the subnet's last
// allocation. The search is next-fit: it starts after the last address
// handed out and wraps around, so a just-released address is not reused
// at once and the usual case costs one lookup. When the first probeLimit
// candidates are taken it falls back to the lowest free address of the
// whole allocation list.
func (x *q) nextFree(sn *Subnet, also []FixedIP) (netip.Addr, bool, error) {
	pools := subnetPools(sn)
	if len(pools) == 0 {
		return netip.Addr{}, false, nil
	}
	skip := map[netip.Addr]bool{}
	for _, f := range also {
		if f.SubnetID == sn.ID {
			if a, ok := parseAddr(f.IPAddress); ok {
				skip[a] = true
			}
		}
	}
	last, err := x.ipamLast(sn.ID)
	if err != nil {
		return netip.Addr{}, false, err
	}
	start := pools[0].start
	if l, ok := parseAddr(last); ok {
		start = nextInPools(pools, l)
	}
	a := start
	for i := 0; i < probeLimit; i++ {
		if !skip[a] {
			owner, err := x.addressOwner(sn.ID, a.String())
			if err != nil {
				return netip.Addr{}, false, err
			}
			if owner == "" {
				return a, true, x.setIPAMLast(sn.ID, a.String())
			}
		}
		if a = nextInPools(pools, a); a == start {
			break
		}
	}
	usedList, err := x.usedAddresses(sn.ID)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, u := range usedList {
		if a, ok := parseAddr(u); ok {
			skip[a] = true
		}
	}
	a, ok := firstFree(pools, skip)
	if !ok {
		return a, false, nil
	}
	return a, true, x.setIPAMLast(sn.ID, a.String())
}

// allocate turns wants into addresses for port p (whose MAC is set) and
// records them. keep are addresses p already holds, which a want for the
// same address keeps rather than re-allocates.
func (x *q) allocate(p *Port, wants []ipWant, keep []FixedIP) ([]FixedIP, error) {
	out := make([]FixedIP, 0, len(wants))
	held := map[FixedIP]bool{}
	for _, k := range keep {
		held[k] = true
	}
	for _, w := range wants {
		addr := w.addr
		switch {
		case addr.IsValid():
		case autoAddressed(w.sn):
			a, err := eui64(netip.MustParsePrefix(w.sn.CIDR), p.MACAddress)
			if err != nil {
				return nil, err
			}
			addr = a
		default:
			a, ok, err := x.nextFree(w.sn, out)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errIPGeneration(p.NetworkID)
			}
			addr = a
		}
		f := FixedIP{SubnetID: w.sn.ID, IPAddress: addr.String()}
		if held[f] {
			out = append(out, f)
			continue
		}
		for _, o := range out {
			if o == f {
				return nil, invalidInput("Duplicate IP address '%s'", f.IPAddress)
			}
		}
		if owner, err := x.addressOwner(f.SubnetID, f.IPAddress); err != nil {
			return nil, err
		} else if owner != "" {
			return nil, errIPAllocated(f.IPAddress, f.SubnetID)
		}
		out = append(out, f)
	}
	return out, nil
}

// storeAllocations replaces p's recorded addresses with fixed, releasing
// those it no longer holds.
func (x *q) storeAllocations(p *Port, old, fixed []FixedIP) error {
	keep := map[FixedIP]bool{}
	for _, f := range fixed {
		keep[f] = true
	}
	for _, f := range old {
		if !keep[f] {
			if err := x.deleteAllocation(p.ID, f); err != nil {
				return err
			}
		}
	}
	had := map[FixedIP]bool{}
	for _, f := range old {
		had[f] = true
	}
	for i, f := range fixed {
		if had[f] {
			if err := x.setAllocationSeq(p.ID, f, i); err != nil {
				return err
			}
			continue
		}
		if err := x.insertAllocation(p.ID, p.NetworkID, f, i); err != nil {
			return err
		}
	}
	p.FixedIPs = fixed
	return nil
}

// uniqueMAC returns a random fa:16:3e MAC no port on the network has.
func (x *q) uniqueMAC(networkID string) (string, error) {
	for range 16 {
		mac := randomMAC()
		taken, err := x.macTaken(networkID, mac)
		if err != nil {
			return "", err
		}
		if !taken {
			return mac, nil
		}
	}
	return "", fault503("MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", networkID)
}
