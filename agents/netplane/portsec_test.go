package netplane

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const testPort = "abcdef0123-4567-89ab-cdef-000000000001"

func ip(n int) *int { return &n }

func testPortSpec(rules ...agentapi.SecurityRule) agentapi.PortSecuritySpec {
	return agentapi.PortSecuritySpec{
		PortID: testPort, TapName: "tapabcdef0123-", MAC: "FA:16:3E:AA:BB:CC",
		IPs:                 []string{"10.0.0.5"},
		AllowedAddressPairs: []agentapi.AddressPair{{IPAddress: "10.0.0.0/28"}, {IPAddress: "10.0.0.99", MACAddress: "fa:16:3e:00:00:99"}},
		PortSecurityEnabled: true,
		Rules:               rules,
	}
}

func TestPortSecurityRulesExact(t *testing.T) {
	spec := testPortSpec(
		agentapi.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: ip(22), PortRangeMax: ip(22)},
		agentapi.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "udp", PortRangeMin: ip(1000), PortRangeMax: ip(2000), RemoteIPPrefix: "10.1.0.0/16"},
		agentapi.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMin: ip(8), PortRangeMax: ip(0), RemoteIPPrefix: "10.0.0.7"},
		agentapi.SecurityRule{Direction: "ingress", EtherType: "IPv6", Protocol: "tcp"},
		agentapi.SecurityRule{Direction: "egress", EtherType: "IPv4"},
		agentapi.SecurityRule{Direction: "egress", EtherType: "IPv4", Protocol: "132", RemoteIPPrefix: "0.0.0.0/0"},
	)
	if err := validatePortSecurity(&spec); err != nil {
		t.Fatal(err)
	}
	f := newFakeIPTables()
	if err := applyPortSecurity(f, spec); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-A INPUT -j neutron-openvswi-INPUT",
		"-A FORWARD -j neutron-openvswi-FORWARD",
		"-A neutron-openvswi-FORWARD -m physdev --physdev-in tapabcdef0123- --physdev-is-bridged -j neutron-openvswi-sg-chain",
		"-A neutron-openvswi-FORWARD -m physdev --physdev-out tapabcdef0123- --physdev-is-bridged -j neutron-openvswi-sg-chain",
		"-A neutron-openvswi-INPUT -m physdev --physdev-in tapabcdef0123- --physdev-is-bridged -j neutron-openvswi-oabcdef0123",
		"-A neutron-openvswi-iabcdef0123 -m state --state RELATED,ESTABLISHED -j RETURN",
		"-A neutron-openvswi-iabcdef0123 -p udp -m udp --sport 67 --dport 68 -j RETURN",
		"-A neutron-openvswi-iabcdef0123 -p tcp -m tcp --dport 22 -j RETURN",
		"-A neutron-openvswi-iabcdef0123 -s 10.1.0.0/16 -p udp -m udp --dport 1000:2000 -j RETURN",
		"-A neutron-openvswi-iabcdef0123 -s 10.0.0.7/32 -p icmp -m icmp --icmp-type 8/0 -j RETURN",
		"-A neutron-openvswi-iabcdef0123 -m state --state INVALID -j DROP",
		"-A neutron-openvswi-iabcdef0123 -j neutron-openvswi-sg-fallback",
		"-A neutron-openvswi-oabcdef0123 -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
		"-A neutron-openvswi-oabcdef0123 -j neutron-openvswi-sabcdef0123",
		"-A neutron-openvswi-oabcdef0123 -p udp -m udp --sport 68 --dport 67 -j RETURN",
		"-A neutron-openvswi-oabcdef0123 -p udp -m udp --sport 67 --dport 68 -j DROP",
		"-A neutron-openvswi-oabcdef0123 -m state --state RELATED,ESTABLISHED -j RETURN",
		"-A neutron-openvswi-oabcdef0123 -j RETURN",
		"-A neutron-openvswi-oabcdef0123 -p sctp -j RETURN",
		"-A neutron-openvswi-oabcdef0123 -m state --state INVALID -j DROP",
		"-A neutron-openvswi-oabcdef0123 -j neutron-openvswi-sg-fallback",
		"-A neutron-openvswi-sabcdef0123 -s 10.0.0.5/32 -m mac --mac-source fa:16:3e:aa:bb:cc -j RETURN",
		"-A neutron-openvswi-sabcdef0123 -s 10.0.0.0/28 -m mac --mac-source fa:16:3e:aa:bb:cc -j RETURN",
		"-A neutron-openvswi-sabcdef0123 -s 10.0.0.99/32 -m mac --mac-source fa:16:3e:00:00:99 -j RETURN",
		"-A neutron-openvswi-sabcdef0123 -j DROP",
		"-A neutron-openvswi-sg-chain -m physdev --physdev-in tapabcdef0123- --physdev-is-bridged -j neutron-openvswi-oabcdef0123",
		"-A neutron-openvswi-sg-chain -m physdev --physdev-out tapabcdef0123- --physdev-is-bridged -j neutron-openvswi-iabcdef0123",
		"-A neutron-openvswi-sg-chain -j ACCEPT",
		"-A neutron-openvswi-sg-fallback -j DROP",
	}
	if got := f.dump("filter"); !slices.Equal(got, want) {
		t.Errorf("filter table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	before := f.Writes
	if err := applyPortSecurity(f, spec); err != nil {
		t.Fatal(err)
	}
	if f.Writes != before {
		t.Errorf("second apply made %d writes", f.Writes-before)
	}
}

func TestPortSecurityConvergeAndDelete(t *testing.T) {
	f := newFakeIPTables()
	ssh := agentapi.SecurityRule{Direction: "ingress", Protocol: "tcp", PortRangeMin: ip(22), PortRangeMax: ip(22)}
	web := agentapi.SecurityRule{Direction: "ingress", Protocol: "tcp", PortRangeMin: ip(80), PortRangeMax: ip(80)}
	a := testPortSpec(ssh, web)
	other := testPortSpec()
	other.PortID, other.TapName, other.AllowedAddressPairs = "9999999999-0000", "tap9999999999-", nil
	for _, s := range []agentapi.PortSecuritySpec{a, other} {
		if err := validatePortSecurity(&s); err != nil {
			t.Fatal(err)
		}
		if err := applyPortSecurity(f, s); err != nil {
			t.Fatal(err)
		}
	}
	// Dropping the ssh rule and an address pair removes exactly them.
	a = testPortSpec(web)
	a.AllowedAddressPairs = a.AllowedAddressPairs[:1]
	if err := applyPortSecurity(f, a); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.dump("filter"), "\n")
	for _, gone := range []string{"--dport 22 ", "10.0.0.99"} {
		if strings.Contains(got, gone) {
			t.Errorf("stale %q left:\n%s", gone, got)
		}
	}
	if !strings.Contains(got, "-A neutron-openvswi-iabcdef0123 -p tcp -m tcp --dport 80 -j RETURN") {
		t.Errorf("kept rule missing:\n%s", got)
	}
	// A changed tap leaves no jump to the old one.
	a.TapName = "tapnew"
	if err := applyPortSecurity(f, a); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.dump("filter"), "\n"); strings.Contains(got, "tapabcdef0123-") {
		t.Errorf("old tap still steered:\n%s", got)
	}
	// Deleting one port keeps the other's and the shared chains.
	if err := removePortSecurity(f, a.PortID); err != nil {
		t.Fatal(err)
	}
	got = strings.Join(f.dump("filter"), "\n")
	if strings.Contains(got, "abcdef0123") || strings.Contains(got, "tapnew") {
		t.Errorf("deleted port left rules:\n%s", got)
	}
	if !strings.Contains(got, "-A neutron-openvswi-sg-chain -j ACCEPT") || !strings.Contains(got, "9999999999") {
		t.Errorf("other port or shared chains gone:\n%s", got)
	}
	// Disabling port security on the last port removes everything.
	other.PortSecurityEnabled = false
	if err := applyPortSecurity(f, other); err != nil {
		t.Fatal(err)
	}
	if got := f.dump("filter"); len(got) != 0 {
		t.Errorf("rules left:\n%s", strings.Join(got, "\n"))
	}
	if chains, _ := f.ListChains("filter"); len(chains) != 3 {
		t.Errorf("chains left: %v", chains)
	}
}

func TestPortSecurityRefusesBadRulesBeforeWriting(t *testing.T) {
	f := newFakeIPTables()
	p := &Plane{host: f}
	bad := []agentapi.SecurityRule{
		{Direction: "ingress", Protocol: "tcp", PortRangeMin: ip(30), PortRangeMax: ip(20)},
		{Direction: "ingress", Protocol: "tcp", PortRangeMin: ip(0), PortRangeMax: ip(20)},
		{Direction: "ingress", Protocol: "udp", PortRangeMin: ip(1), PortRangeMax: ip(70000)},
		{Direction: "ingress", Protocol: "udp", PortRangeMin: ip(1)},
		{Direction: "ingress", Protocol: "tcp; iptables -F"},
		{Direction: "ingress", Protocol: "256"},
		{Direction: "ingress", Protocol: "-1"},
		{Direction: "ingress", Protocol: "", PortRangeMin: ip(22), PortRangeMax: ip(22)},
		{Direction: "ingress", Protocol: "47", PortRangeMin: ip(22), PortRangeMax: ip(22)},
		{Direction: "ingress", Protocol: "icmp", PortRangeMin: ip(300)},
		{Direction: "ingress", Protocol: "icmp", PortRangeMax: ip(0)},
		{Direction: "sideways", Protocol: "tcp"},
		{Direction: "ingress", EtherType: "IPX"},
		{Direction: "ingress", RemoteIPPrefix: "10.0.0.0/33"},
		{Direction: "ingress", RemoteIPPrefix: "10.0.0.0/8 -j ACCEPT"},
	}
	for i, sr := range bad {
		spec := testPortSpec(agentapi.SecurityRule{Direction: "ingress", Protocol: "tcp"}, sr)
		if err := p.ApplyPortSecurity(context.Background(), spec); !fault.Is(err, fault.Invalid) {
			t.Errorf("rule %d %+v: got %v, want Invalid", i, sr, err)
		}
	}
	for _, mutate := range []func(*agentapi.PortSecuritySpec){
		func(s *agentapi.PortSecuritySpec) { s.MAC = "garbage" },
		func(s *agentapi.PortSecuritySpec) { s.MAC = "01:00:5e:00:00:01" },
		func(s *agentapi.PortSecuritySpec) { s.TapName = "tap\n-j ACCEPT" },
		func(s *agentapi.PortSecuritySpec) { s.IPs = []string{"10.0.0.5/24"} },
		func(s *agentapi.PortSecuritySpec) { s.AllowedAddressPairs[0].MACAddress = "fa:16:3e" },
		func(s *agentapi.PortSecuritySpec) { s.PortID = "../../etc" },
	} {
		spec := testPortSpec()
		mutate(&spec)
		if err := p.ApplyPortSecurity(context.Background(), spec); !fault.Is(err, fault.Invalid) {
			t.Errorf("spec %+v: got %v, want Invalid", spec, err)
		}
	}
	if f.Writes != 0 {
		t.Errorf("%d writes for refused specs", f.Writes)
	}
}

func TestSyncChainNeverEmpties(t *testing.T) {
	f := newFakeIPTables()
	want1 := []rule{r("-s", "10.0.0.1/32", "-j", "RETURN"), r("-j", "DROP")}
	if _, err := syncChain(f, "filter", "c", want1); err != nil {
		t.Fatal(err)
	}
	want2 := []rule{r("-s", "10.0.0.2/32", "-j", "RETURN"), r("-j", "DROP")}
	if _, err := syncChain(f, "filter", "c", want2); err != nil {
		t.Fatal(err)
	}
	got, _ := chainRules(f, "filter", "c")
	if !slices.Equal(got, []string{"-s 10.0.0.2/32 -j RETURN", "-j DROP"}) {
		t.Errorf("chain = %q", got)
	}
}

// FuzzSecurityRule: a rule is refused (Invalid) or renders to iptables
// words without whitespace, so it cannot smuggle options.
func FuzzSecurityRule(f *testing.F) {
	f.Add("ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0")
	f.Add("egress", "IPv4", "icmp", 8, 0, "10.0.0.1")
	f.Add("ingress", "IPv4", "tcp -j ACCEPT", 1, 2, "10.0.0.0/8\n")
	f.Fuzz(func(t *testing.T, dir, eth, proto string, lo, hi int, remote string) {
		sr := agentapi.SecurityRule{Direction: dir, EtherType: eth, Protocol: proto, PortRangeMin: &lo, PortRangeMax: &hi, RemoteIPPrefix: remote}
		m, err := ruleMatch(sr)
		if err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("error of kind %v: %v", fault.KindOf(err), err)
			}
			return
		}
		for _, w := range m {
			if w == "" || strings.ContainsAny(w, " \t\r\n") {
				t.Fatalf("rule word %q from %+v", w, sr)
			}
		}
	})
}

func TestReverterUndoesInReverse(t *testing.T) {
	var got []int
	rev := &reverter{}
	for i := 1; i <= 3; i++ {
		rev.Add(func() { got = append(got, i) })
	}
	rev.Fail()
	if !slices.Equal(got, []int{3, 2, 1}) {
		t.Errorf("undo order %v", got)
	}
	got = nil
	rev.Add(func() { got = append(got, 9) })
	rev.Success()
	rev.Fail()
	if got != nil {
		t.Errorf("undo after success: %v", got)
	}
}
