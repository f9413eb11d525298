package netplane

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// The host filter chains of the iptables_hybrid firewall, named as
// neutron's iptables firewall driver names them.
const (
	sgPrefix      = "neutron-openvswi-"
	chainSG       = sgPrefix + "sg-chain"
	chainFallback = sgPrefix + "sg-fallback"
	chainSGFwd    = sgPrefix + "FORWARD"
	chainSGInput  = sgPrefix + "INPUT"
	filterTable   = "filter"
	brNFSysctl    = "/proc/sys/net/bridge/bridge-nf-call-iptables"
)

// sharedSGChains are the chains every filtered port shares.
var sharedSGChains = map[string]bool{chainSG: true, chainFallback: true, chainSGFwd: true, chainSGInput: true}

func ingressChain(portID string) string { return sgPrefix + "i" + short(portID, 10) }
func egressChain(portID string) string  { return sgPrefix + "o" + short(portID, 10) }
func spoofChain(portID string) string   { return sgPrefix + "s" + short(portID, 10) }

// portChains are the rules of one port's three chains.
type portChains struct {
	Ingress, Egress, Spoof []rule
}

// validatePortSecurity checks spec. Errors are Invalid, before any rule is
// written.
func validatePortSecurity(spec *agentapi.PortSecuritySpec) error {
	if err := validID("port", spec.PortID); err != nil {
		return err
	}
	if err := validIfName(spec.TapName); err != nil {
		return err
	}
	if !spec.PortSecurityEnabled {
		return nil
	}
	if _, err := parseMAC(spec.MAC); err != nil {
		return err
	}
	for _, ip := range spec.IPs {
		if _, err := parseIPv4(ip); err != nil {
			return err
		}
	}
	for _, ap := range spec.AllowedAddressPairs {
		if _, err := parseIPOrNet(ap.IPAddress); err != nil {
			return err
		}
		if ap.MACAddress != "" {
			if _, err := parseMAC(ap.MACAddress); err != nil {
				return err
			}
		}
	}
	for i, sr := range spec.Rules {
		if _, err := ruleMatch(sr); err != nil {
			return fault.Invalidf("security rule %d: %s", i+1, fault.Message(err))
		}
	}
	return nil
}

// ruleMatch renders the match part of one rule (without -j), or nil when
// the rule does not apply to IPv4. Errors are Invalid.
func ruleMatch(sr agentapi.SecurityRule) (rule, error) {
	if sr.Direction != "ingress" && sr.Direction != "egress" {
		return nil, fault.Invalidf("direction %q must be ingress or egress", sr.Direction)
	}
	switch sr.EtherType {
	case "", "IPv4":
	case "IPv6":
		// IPv4 only on this plane: ip6tables rules are not managed.
		return nil, nil
	default:
		return nil, fault.Invalidf("ethertype %q must be IPv4 or IPv6", sr.EtherType)
	}
	var m rule
	if sr.RemoteIPPrefix != "" {
		pfx, err := parseIPOrNet(sr.RemoteIPPrefix)
		if err != nil {
			return nil, err
		}
		if pfx.Bits() != 0 {
			if sr.Direction == "ingress" {
				m = append(m, "-s", pfx.String())
			} else {
				m = append(m, "-d", pfx.String())
			}
		}
	}
	proto := strings.ToLower(sr.Protocol)
	switch proto {
	case "6":
		proto = "tcp"
	case "17":
		proto = "udp"
	case "1":
		proto = "icmp"
	case "", "any", "tcp", "udp", "icmp":
	default:
		n, err := strconv.Atoi(proto)
		if err != nil || n < 1 || n > 255 || strconv.Itoa(n) != proto {
			return nil, fault.Invalidf("protocol %q must be tcp, udp, icmp or a number from 1 to 255", sr.Protocol)
		}
	}
	if proto == "any" {
		proto = ""
	}
	lo, hi := sr.PortRangeMin, sr.PortRangeMax
	switch proto {
	case "tcp", "udp":
		m = append(m, "-p", proto, "-m", proto)
		if lo == nil && hi == nil {
			break
		}
		if lo == nil || hi == nil || *lo < 1 || *hi > 65535 || *lo > *hi {
			return nil, fault.Invalidf("port range must satisfy 1 <= min <= max <= 65535")
		}
		if *lo == *hi {
			m = append(m, "--dport", strconv.Itoa(*lo))
		} else {
			m = append(m, "--dport", strconv.Itoa(*lo)+":"+strconv.Itoa(*hi))
		}
		// -m tcp without a port is not printed back; keep the canonical form.
	case "icmp":
		m = append(m, "-p", "icmp")
		if lo == nil {
			if hi != nil {
				return nil, fault.Invalidf("an ICMP code needs an ICMP type")
			}
			break
		}
		if *lo < 0 || *lo > 255 || hi != nil && (*hi < 0 || *hi > 255) {
			return nil, fault.Invalidf("ICMP type and code must be 0 to 255")
		}
		t := strconv.Itoa(*lo)
		if hi != nil {
			t += "/" + strconv.Itoa(*hi)
		}
		m = append(m, "-m", "icmp", "--icmp-type", t)
	case "":
		if lo != nil || hi != nil {
			return nil, fault.Invalidf("a port range needs protocol tcp, udp or icmp")
		}
	default:
		if lo != nil || hi != nil {
			return nil, fault.Invalidf("a port range needs protocol tcp, udp or icmp")
		}
		m = append(m, "-p", protoName(proto))
	}
	if (proto == "tcp" || proto == "udp") && lo == nil {
		m = m[:len(m)-2] // "-p tcp" alone is how iptables prints a portless rule
	}
	return m, nil
}

// protoName is how iptables -S prints a protocol given by number.
func protoName(n string) string {
	switch n {
	case "47":
		return "gre"
	case "50":
		return "esp"
	case "51":
		return "ah"
	case "132":
		return "sctp"
	}
	return n
}

// buildPortChains renders the three chains of a validated port.
func buildPortChains(spec agentapi.PortSecuritySpec) portChains {
	var pc portChains
	mac, _ := parseMAC(spec.MAC)
	fallback := r("-j", chainFallback)

	// Spoofing: each allowed (source, MAC) returns; anything else drops.
	for _, ip := range spec.IPs {
		a, _ := parseIPv4(ip)
		pc.Spoof = append(pc.Spoof, r("-s", a.String()+"/32", "-m", "mac", "--mac-source", mac, "-j", "RETURN"))
	}
	for _, ap := range spec.AllowedAddressPairs {
		pfx, _ := parseIPOrNet(ap.IPAddress)
		m := mac
		if ap.MACAddress != "" {
			m, _ = parseMAC(ap.MACAddress)
		}
		pc.Spoof = append(pc.Spoof, r("-s", pfx.String(), "-m", "mac", "--mac-source", m, "-j", "RETURN"))
	}
	pc.Spoof = append(pc.Spoof, r("-j", "DROP"))

	// Ingress: replies, DHCP offers, the rules, then the fallback drop.
	pc.Ingress = []rule{
		r("-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "RETURN"),
		r("-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68", "-j", "RETURN"),
	}
	// Egress: DHCP discovery (before the port has an address), the spoofing
	// check, DHCP requests, no DHCP server in a guest, replies, the rules.
	pc.Egress = []rule{
		r("-s", "0.0.0.0/32", "-d", "255.255.255.255/32", "-p", "udp", "-m", "udp", "--sport", "68", "--dport", "67", "-j", "RETURN"),
		r("-j", spoofChain(spec.PortID)),
		r("-p", "udp", "-m", "udp", "--sport", "68", "--dport", "67", "-j", "RETURN"),
		r("-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68", "-j", "DROP"),
		r("-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "RETURN"),
	}
	for _, sr := range spec.Rules {
		m, _ := ruleMatch(sr)
		if m == nil && sr.EtherType == "IPv6" {
			continue
		}
		rl := append(append(rule{}, m...), "-j", "RETURN")
		if sr.Direction == "ingress" {
			pc.Ingress = append(pc.Ingress, rl)
		} else {
			pc.Egress = append(pc.Egress, rl)
		}
	}
	invalid := r("-m", "state", "--state", "INVALID", "-j", "DROP")
	pc.Ingress = append(pc.Ingress, invalid, fallback)
	pc.Egress = append(pc.Egress, invalid, fallback)
	return pc
}

// portJumps are the rules that steer a port's traffic into its chains.
func portJumps(spec agentapi.PortSecuritySpec) []struct {
	chain string
	spec  rule
} {
	out := func(c string) rule {
		return r("-m", "physdev", "--physdev-out", spec.TapName, "--physdev-is-bridged", "-j", c)
	}
	in := func(c string) rule {
		return r("-m", "physdev", "--physdev-in", spec.TapName, "--physdev-is-bridged", "-j", c)
	}
	return []struct {
		chain string
		spec  rule
	}{
		{chainSGFwd, out(chainSG)},
		{chainSGFwd, in(chainSG)},
		{chainSG, out(ingressChain(spec.PortID))},
		{chainSG, in(egressChain(spec.PortID))},
		{chainSGInput, in(egressChain(spec.PortID))},
	}
}

// ensureSGBase creates the shared chains and the built-in jumps to them.
func ensureSGBase(ipt iptables) error {
	if _, err := syncChain(ipt, filterTable, chainFallback, []rule{r("-j", "DROP")}); err != nil {
		return err
	}
	for _, c := range []string{chainSG, chainSGFwd, chainSGInput} {
		ok, err := ipt.ChainExists(filterTable, c)
		if err != nil {
			return err
		}
		if !ok {
			if err := ipt.NewChain(filterTable, c); err != nil {
				return err
			}
		}
	}
	// sg-chain ends in ACCEPT: traffic the port chains returned is allowed.
	rules, err := chainRules(ipt, filterTable, chainSG)
	if err != nil {
		return err
	}
	if len(rules) == 0 || rules[len(rules)-1] != "-j ACCEPT" {
		if err := deleteRuleAll(ipt, filterTable, chainSG, r("-j", "ACCEPT")); err != nil {
			return err
		}
		if err := ipt.Append(filterTable, chainSG, "-j", "ACCEPT"); err != nil {
			return err
		}
	}
	if err := ensureJump(ipt, filterTable, "FORWARD", true, r("-j", chainSGFwd)); err != nil {
		return err
	}
	return ensureJump(ipt, filterTable, "INPUT", true, r("-j", chainSGInput))
}

// applyPortSecurity converges one validated port's chains and jumps.
func applyPortSecurity(ipt iptables, spec agentapi.PortSecuritySpec) error {
	if !spec.PortSecurityEnabled {
		return removePortSecurity(ipt, spec.PortID)
	}
	// A port whose tap changed keeps no jump to the old tap.
	if err := removePortJumps(ipt, spec.PortID, spec.TapName); err != nil {
		return err
	}
	if err := ensureSGBase(ipt); err != nil {
		return err
	}
	pc := buildPortChains(spec)
	for _, c := range []struct {
		name  string
		rules []rule
	}{{spoofChain(spec.PortID), pc.Spoof}, {ingressChain(spec.PortID), pc.Ingress}, {egressChain(spec.PortID), pc.Egress}} {
		if _, err := syncChain(ipt, filterTable, c.name, c.rules); err != nil {
			return err
		}
	}
	for _, j := range portJumps(spec) {
		if err := ensureJump(ipt, filterTable, j.chain, true, j.spec); err != nil {
			return err
		}
	}
	return nil
}

// removePortJumps deletes jumps to the port's chains other than through
// keepTap ("" removes all).
func removePortJumps(ipt iptables, portID, keepTap string) error {
	targets := map[string]bool{ingressChain(portID): true, egressChain(portID): true}
	for _, c := range []string{chainSGFwd, chainSG, chainSGInput} {
		ok, err := ipt.ChainExists(filterTable, c)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		rules, err := chainRules(ipt, filterTable, c)
		if err != nil {
			return err
		}
		for _, rl := range rules {
			words := strings.Fields(rl)
			tap, target := physdevOf(words)
			if tap == "" {
				continue
			}
			// sg-FORWARD jumps name only the tap; the others name the port.
			mine := targets[target] || (c == chainSGFwd && target == chainSG && isPortTap(ipt, tap, targets))
			if mine && tap != keepTap {
				if err := ipt.Delete(filterTable, c, words...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isPortTap reports whether the sg-chain steers tap into the port's chains.
func isPortTap(ipt iptables, tap string, targets map[string]bool) bool {
	rules, _ := chainRules(ipt, filterTable, chainSG)
	for _, rl := range rules {
		t, target := physdevOf(strings.Fields(rl))
		if t == tap && targets[target] {
			return true
		}
	}
	return false
}

// physdevOf returns the tap and the jump target of a physdev rule.
func physdevOf(words []string) (tap, target string) {
	for i := 0; i+1 < len(words); i++ {
		switch words[i] {
		case "--physdev-in", "--physdev-out":
			tap = words[i+1]
		case "-j":
			target = words[i+1]
		}
	}
	return tap, target
}

// removePortSecurity removes a port's jumps and chains, and the shared
// chains once no port uses them.
func removePortSecurity(ipt iptables, portID string) error {
	// Jumps from sg-FORWARD are found through sg-chain, so they go first.
	if err := removePortJumps(ipt, portID, ""); err != nil {
		return err
	}
	for _, c := range []string{ingressChain(portID), egressChain(portID), spoofChain(portID)} {
		if err := deleteChain(ipt, filterTable, c); err != nil {
			return fmt.Errorf("delete %s: %w", c, err)
		}
	}
	return removeSGBaseIfUnused(ipt)
}

// removeSGBaseIfUnused removes the shared chains when no port chain is left.
func removeSGBaseIfUnused(ipt iptables) error {
	chains, err := ipt.ListChains(filterTable)
	if err != nil {
		return err
	}
	for _, c := range chains {
		if strings.HasPrefix(c, sgPrefix) && !sharedSGChains[c] {
			return nil
		}
	}
	if err := deleteRuleAll(ipt, filterTable, "FORWARD", r("-j", chainSGFwd)); err != nil {
		return err
	}
	if err := deleteRuleAll(ipt, filterTable, "INPUT", r("-j", chainSGInput)); err != nil {
		return err
	}
	for _, c := range []string{chainSGFwd, chainSGInput, chainSG, chainFallback} {
		if err := deleteChain(ipt, filterTable, c); err != nil {
			return err
		}
	}
	return nil
}

// ApplyPortSecurity converges one port's security-group chains on the
// host: ingress default deny with the ingress rules, egress anti-spoofing
// with the egress rules. PortSecurityEnabled false removes the filtering.
// Errors: Invalid for a bad spec (nothing is written then).
func (p *Plane) ApplyPortSecurity(ctx context.Context, spec agentapi.PortSecuritySpec) error {
	if err := validatePortSecurity(&spec); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	if spec.PortSecurityEnabled {
		// Bridged traffic must traverse iptables for physdev to see it.
		if b, err := os.ReadFile(brNFSysctl); err != nil || strings.TrimSpace(string(b)) != "1" {
			if err := os.WriteFile(brNFSysctl, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("enable br_netfilter (modprobe br_netfilter): %w", err)
			}
		}
	}
	if err := applyPortSecurity(p.host, spec); err != nil {
		return fmt.Errorf("security groups of port %s: %w", spec.PortID, err)
	}
	return nil
}

// DeletePortSecurity removes a port's chains and jumps. Deleting a port
// that has none succeeds.
func (p *Plane) DeletePortSecurity(ctx context.Context, portID string) error {
	if err := validID("port", portID); err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	return removePortSecurity(p.host, portID)
}
