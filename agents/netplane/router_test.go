package netplane

import (
	"slices"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const (
	testRouterID = "0c1d2e3f-aaaa-bbbb-cccc-000000000001"
	testGWPort   = "9f8e7d6c-5b4a-4000-8000-000000000002"
	testQG       = "qg-9f8e7d6c-5b"
)

func testRouter(snat bool, fips ...agentapi.FloatingIP) agentapi.RouterSpec {
	return agentapi.RouterSpec{
		ID: testRouterID,
		Interfaces: []agentapi.RouterInterface{{
			PortID: "11111111-2222-3333-4444-555555555555", MAC: "fa:16:3e:00:00:01",
			IPCIDR: "10.0.0.1/24", Bridge: "brq11111111-22",
		}},
		Gateway: &agentapi.RouterGateway{
			PortID: testGWPort, MAC: "fa:16:3e:00:00:02", IPCIDR: "172.24.4.10/24",
			Bridge: "br-ex", GatewayIP: "172.24.4.1",
		},
		EnableSNAT:  snat,
		FloatingIPs: fips,
	}
}

func TestRouterRulesExact(t *testing.T) {
	fip := agentapi.FloatingIP{FloatingIP: "172.24.4.20", FixedIP: "10.0.0.5"}
	tests := []struct {
		name string
		spec agentapi.RouterSpec
		want []string
	}{
		{"snat and a floating IP", testRouter(true, fip), []string{
			"-A PREROUTING -j neutron-l3-agent-PREROUTING",
			"-A OUTPUT -j neutron-l3-agent-OUTPUT",
			"-A POSTROUTING -j neutron-l3-agent-POSTROUTING",
			"-A POSTROUTING -j neutron-postrouting-bottom",
			"-A neutron-l3-agent-OUTPUT -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.5",
			"-A neutron-l3-agent-POSTROUTING ! -i " + testQG + " ! -o " + testQG + " -m conntrack ! --ctstate DNAT -j ACCEPT",
			"-A neutron-l3-agent-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697",
			"-A neutron-l3-agent-PREROUTING -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.5",
			"-A neutron-l3-agent-float-snat -s 10.0.0.5/32 -j SNAT --to-source 172.24.4.20",
			"-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat",
			"-A neutron-l3-agent-snat -o " + testQG + " -j SNAT --to-source 172.24.4.10",
			"-A neutron-postrouting-bottom -j neutron-l3-agent-snat",
		}},
		{"enable_snat false keeps floating IPs only", testRouter(false, fip), []string{
			"-A PREROUTING -j neutron-l3-agent-PREROUTING",
			"-A OUTPUT -j neutron-l3-agent-OUTPUT",
			"-A POSTROUTING -j neutron-l3-agent-POSTROUTING",
			"-A POSTROUTING -j neutron-postrouting-bottom",
			"-A neutron-l3-agent-OUTPUT -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.5",
			"-A neutron-l3-agent-POSTROUTING ! -i " + testQG + " ! -o " + testQG + " -m conntrack ! --ctstate DNAT -j ACCEPT",
			"-A neutron-l3-agent-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697",
			"-A neutron-l3-agent-PREROUTING -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.5",
			"-A neutron-l3-agent-float-snat -s 10.0.0.5/32 -j SNAT --to-source 172.24.4.20",
			"-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat",
			"-A neutron-postrouting-bottom -j neutron-l3-agent-snat",
		}},
		{"no gateway, no NAT", agentapi.RouterSpec{ID: testRouterID, EnableSNAT: true}, []string{
			"-A PREROUTING -j neutron-l3-agent-PREROUTING",
			"-A OUTPUT -j neutron-l3-agent-OUTPUT",
			"-A POSTROUTING -j neutron-l3-agent-POSTROUTING",
			"-A POSTROUTING -j neutron-postrouting-bottom",
			"-A neutron-l3-agent-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697",
			"-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat",
			"-A neutron-postrouting-bottom -j neutron-l3-agent-snat",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateRouter(&tt.spec); err != nil {
				t.Fatal(err)
			}
			f := newFakeIPTables()
			if err := syncRouterRules(f, tt.spec); err != nil {
				t.Fatal(err)
			}
			if got := f.dump("nat"); !slices.Equal(got, tt.want) {
				t.Errorf("nat table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// Converged: a second apply writes nothing.
			before := f.Writes
			if err := syncRouterRules(f, tt.spec); err != nil {
				t.Fatal(err)
			}
			if f.Writes != before {
				t.Errorf("second apply made %d writes", f.Writes-before)
			}
		})
	}
}

func TestRouterConvergeRemovesStale(t *testing.T) {
	f := newFakeIPTables()
	a := agentapi.FloatingIP{FloatingIP: "172.24.4.20", FixedIP: "10.0.0.5"}
	b := agentapi.FloatingIP{FloatingIP: "172.24.4.21", FixedIP: "10.0.0.6"}
	if err := syncRouterRules(f, testRouter(true, a, b)); err != nil {
		t.Fatal(err)
	}
	// A stray chain from an older version goes too.
	_ = f.NewChain("nat", "neutron-l3-agent-stale")
	if err := syncRouterRules(f, testRouter(false, b)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.dump("nat"), "\n")
	for _, gone := range []string{"172.24.4.20", "10.0.0.5", "--to-source 172.24.4.10"} {
		if strings.Contains(got, gone) {
			t.Errorf("stale %q left:\n%s", gone, got)
		}
	}
	if !strings.Contains(got, "-A neutron-l3-agent-float-snat -s 10.0.0.6/32 -j SNAT --to-source 172.24.4.21") {
		t.Errorf("kept floating IP missing:\n%s", got)
	}
	if ok, _ := f.ChainExists("nat", "neutron-l3-agent-stale"); ok {
		t.Error("stale chain kept")
	}
}

func TestValidateRouterRefuses(t *testing.T) {
	bad := []func(*agentapi.RouterSpec){
		func(s *agentapi.RouterSpec) { s.ID = "x;rm -rf" },
		func(s *agentapi.RouterSpec) { s.Interfaces[0].MAC = "zz:16:3e:00:00:01" },
		func(s *agentapi.RouterSpec) { s.Interfaces[0].IPCIDR = "10.0.0.1" },
		func(s *agentapi.RouterSpec) { s.Interfaces[0].Bridge = "br\nx" },
		func(s *agentapi.RouterSpec) { s.Gateway.GatewayIP = "192.168.1.1" },
		func(s *agentapi.RouterSpec) {
			s.FloatingIPs = []agentapi.FloatingIP{{FloatingIP: "172.24.4.20 -j ACCEPT", FixedIP: "10.0.0.5"}}
		},
		func(s *agentapi.RouterSpec) { s.Routes = []agentapi.Route{{Destination: "10.9.0.0/16", NextHop: "x"}} },
		func(s *agentapi.RouterSpec) {
			s.Gateway = nil
			s.FloatingIPs = []agentapi.FloatingIP{{FloatingIP: "172.24.4.20", FixedIP: "10.0.0.5"}}
		},
	}
	for i, mutate := range bad {
		s := testRouter(true)
		mutate(&s)
		if err := validateRouter(&s); !fault.Is(err, fault.Invalid) {
			t.Errorf("case %d: got %v, want Invalid", i, err)
		}
	}
}
