package netplane

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Names of everything the plane creates: each carries its owner's ID, so a
// restarted agent can tell what belongs to which resource (neutron's
// conventions, so operators find what they know).
const (
	prefixBridge  = "brq"      // brq<net11>: a tenant network's bridge
	prefixVXLAN   = "vxlan-"   // vxlan-<vni>
	prefixDHCPNS  = "qdhcp-"   // qdhcp-<network id>
	prefixRouteNS = "qrouter-" // qrouter-<router id>
	prefixTap     = "tap"      // tap<port11>: a port's device
	prefixDHCPDev = "ns-"      // ns-<port11>: the DHCP port's bridge-side peer
	prefixRtrInt  = "qr-"      // qr-<port11>: a router's internal leg (in the namespace)
	prefixRtrGW   = "qg-"      // qg-<port11>: a router's gateway leg (in the namespace)
)

func bridgeName(netID string) string  { return prefixBridge + short(netID, 11) }
func vxlanName(vni int) string        { return prefixVXLAN + strconv.Itoa(vni) }
func dhcpNS(netID string) string      { return prefixDHCPNS + netID }
func routerNS(routerID string) string { return prefixRouteNS + routerID }
func tapName(portID string) string    { return prefixTap + short(portID, 11) }
func dhcpPeer(portID string) string   { return prefixDHCPDev + short(portID, 11) }
func qrName(portID string) string     { return prefixRtrInt + short(portID, 11) }
func qgName(portID string) string     { return prefixRtrGW + short(portID, 11) }

// rtrPeer is the bridge-side end of a router leg: "t" for tap-like, then the
// leg's own prefix letter, so it is unique and tells whose it is.
func rtrPeer(leg string) string { return "t" + leg } // tqr-<port11>, tqg-<port11>

func short(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// validID accepts the IDs the control plane mints (UUIDs) and nothing that
// could break out of a device name, a path, a dnsmasq tag or a chain name.
func validID(kind, id string) error {
	if id == "" || len(id) > 64 {
		return fault.Invalidf("%s ID must be 1 to 64 characters", kind)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fault.Invalidf("%s ID %q may only contain letters, digits and '-'", kind, id)
		}
	}
	return nil
}

// validIfName accepts a Linux interface name we are willing to touch.
func validIfName(name string) error {
	if name == "" || len(name) > 15 {
		return fault.Invalidf("interface name %q must be 1 to 15 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fault.Invalidf("interface name %q has an invalid character", name)
		}
	}
	return nil
}

// validHostname accepts a DHCP hostname: [a-z0-9-], at most 63 characters,
// not starting or ending with '-'.
func validHostname(h string) error {
	if len(h) == 0 || len(h) > 63 {
		return fault.Invalidf("hostname must be 1 to 63 characters")
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fault.Invalidf("hostname %q may only contain a-z, 0-9 and '-'", h)
		}
	}
	if h[0] == '-' || h[len(h)-1] == '-' {
		return fault.Invalidf("hostname %q may not start or end with '-'", h)
	}
	return nil
}

// parseMAC returns a unicast Ethernet MAC in canonical lower-case form.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || len(s) != 17 {
		return "", fault.Invalidf("invalid MAC address %q", s)
	}
	if hw[0]&1 == 1 {
		return "", fault.Invalidf("MAC address %q is multicast", s)
	}
	return hw.String(), nil
}

// parseIPv4 returns an IPv4 address.
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fault.Invalidf("invalid IPv4 address %q", s)
	}
	return a, nil
}

// parseIPCIDR parses an address with its prefix ("10.0.0.1/24").
func parseIPCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fault.Invalidf("invalid IPv4 address with prefix %q", s)
	}
	return p, nil
}

// parseNet parses a network ("10.0.0.0/24") and returns it masked.
func parseNet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fault.Invalidf("invalid IPv4 CIDR %q", s)
	}
	return p.Masked(), nil
}

// parseIPOrNet accepts an address (as /32) or a CIDR.
func parseIPOrNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := parseIPv4(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, 32), nil
	}
	return parseNet(s)
}

// maskString renders a prefix length as a dotted mask (dnsmasq wants it).
func maskString(bits int) string {
	m := net.CIDRMask(bits, 32)
	return fmt.Sprintf("%d.%d.%d.%d", m[0], m[1], m[2], m[3])
}
