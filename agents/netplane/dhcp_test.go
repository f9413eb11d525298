package netplane

import (
	"slices"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const testNet = "5e5e5e5e-1111-2222-3333-444444444444"

func testNetwork() agentapi.NetworkSpec {
	return agentapi.NetworkSpec{
		ID: testNet, Type: "vxlan", SegmentationID: 1001, MTU: 1450,
		DHCPPort: &agentapi.DHCPPort{ID: "d0d0d0d0-aaaa-bbbb-cccc-dddddddddddd", MAC: "FA:16:3E:00:00:10"},
		Subnets: []agentapi.SubnetSpec{
			{ID: "50505050-0000-0000-0000-000000000001", CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true,
				DHCPStart: "10.0.0.2", DHCPEnd: "10.0.0.254", DNSNameservers: []string{"10.0.0.53", "192.168.1.53"}, DHCPPortIP: "10.0.0.2"},
			{ID: "50505050-0000-0000-0000-000000000002", CIDR: "10.1.0.0/16", EnableDHCP: true, DHCPPortIP: "10.1.0.2"},
			{ID: "50505050-0000-0000-0000-000000000003", CIDR: "10.2.0.0/24", EnableDHCP: false},
		},
		DHCPHosts: []agentapi.DHCPHost{
			{MAC: "fa:16:3e:00:00:05", IP: "10.0.0.5", Hostname: "vm-one"},
			{MAC: "FA:16:3E:00:00:06", IP: "10.1.0.6"},
		},
	}
}

func TestBuildDHCP(t *testing.T) {
	spec := testNetwork()
	if err := validateNetwork(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.Bridge != "brq5e5e5e5e-11" {
		t.Errorf("bridge = %q", spec.Bridge)
	}
	c := buildDHCP("/var/lib/nimbus", spec)
	dir := "/var/lib/nimbus/dhcp/" + testNet
	wantArgs := []string{
		"--no-hosts", "--no-resolv", "--strict-order", "--bind-interfaces",
		"--interface=tapd0d0d0d0-aa", "--except-interface=lo",
		"--conf-file=/dev/null",
		"--pid-file=" + dir + "/pid",
		"--dhcp-hostsfile=" + dir + "/host",
		"--dhcp-optsfile=" + dir + "/opts",
		"--leasefile-ro",
		"--domain=openstacklocal",
		"--dhcp-range=set:subnet-50505050-0000-0000-0000-000000000001,10.0.0.0,static,255.255.255.0,86400s",
		"--dhcp-range=set:subnet-50505050-0000-0000-0000-000000000002,10.1.0.0,static,255.255.0.0,86400s",
		"--dhcp-lease-max=16",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args:\n%s\nwant:\n%s", strings.Join(c.Args, "\n"), strings.Join(wantArgs, "\n"))
	}
	wantHosts := "fa:16:3e:00:00:05,vm-one,10.0.0.5\nfa:16:3e:00:00:06,10.1.0.6\n"
	if string(c.Hosts) != wantHosts {
		t.Errorf("hosts:\n%s\nwant:\n%s", c.Hosts, wantHosts)
	}
	wantOpts := "tag:subnet-50505050-0000-0000-0000-000000000001,option:router,10.0.0.1\n" +
		"tag:subnet-50505050-0000-0000-0000-000000000001,option:dns-server,10.0.0.53,192.168.1.53\n" +
		"tag:subnet-50505050-0000-0000-0000-000000000001,option:mtu,1450\n" +
		"tag:subnet-50505050-0000-0000-0000-000000000002,option:router\n" +
		"tag:subnet-50505050-0000-0000-0000-000000000002,option:mtu,1450\n"
	if string(c.Opts) != wantOpts {
		t.Errorf("opts:\n%s\nwant:\n%s", c.Opts, wantOpts)
	}
	if c.NS != "qdhcp-"+testNet || c.Peer != "ns-d0d0d0d0-aa" || c.MAC != "fa:16:3e:00:00:10" {
		t.Errorf("names: %+v", c)
	}
	if got := []string{c.Addrs[0].String(), c.Addrs[1].String()}; !slices.Equal(got, []string{"10.0.0.2/24", "10.1.0.2/16"}) {
		t.Errorf("addrs = %v", got)
	}
	for _, name := range []string{c.Iface, c.Peer, spec.Bridge, vxlanName(16777215), qrName(testNet), rtrPeer(qgName(testNet))} {
		if len(name) > 15 {
			t.Errorf("interface name %q longer than 15", name)
		}
	}
}

func TestBuildDHCPNone(t *testing.T) {
	spec := testNetwork()
	spec.DHCPPort = nil
	if buildDHCP("/s", spec) != nil {
		t.Error("no DHCP port, yet a dnsmasq")
	}
	spec = testNetwork()
	for i := range spec.Subnets {
		spec.Subnets[i].EnableDHCP = false
	}
	if buildDHCP("/s", spec) != nil {
		t.Error("no DHCP subnet, yet a dnsmasq")
	}
}

func TestValidateNetworkRefusesHostileInput(t *testing.T) {
	bad := map[string]func(*agentapi.NetworkSpec){
		"hostname with newline":   func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].Hostname = "vm\ndhcp-range=0.0.0.0" },
		"hostname with comma":     func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].Hostname = "vm,10.0.0.9" },
		"hostname upper case":     func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].Hostname = "VM" },
		"hostname too long":       func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].Hostname = strings.Repeat("a", 64) },
		"hostname leading dash":   func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].Hostname = "-vm" },
		"MAC garbage":             func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].MAC = "fa:16:3e:00:00:05\n" },
		"MAC wrong length":        func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].MAC = "fa:16:3e:00:00:05:06:07" },
		"duplicate MAC":           func(s *agentapi.NetworkSpec) { s.DHCPHosts[1].MAC = "FA:16:3E:00:00:05" },
		"IP garbage":              func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].IP = "10.0.0.5,set:x" },
		"IP outside DHCP subnets": func(s *agentapi.NetworkSpec) { s.DHCPHosts[0].IP = "10.2.0.5" },
		"DHCP port MAC":           func(s *agentapi.NetworkSpec) { s.DHCPPort.MAC = "x" },
		"DHCP port ID":            func(s *agentapi.NetworkSpec) { s.DHCPPort.ID = "a/b" },
		"network ID":              func(s *agentapi.NetworkSpec) { s.ID = "n\n1" },
		"bridge mismatch":         func(s *agentapi.NetworkSpec) { s.Bridge = "eth0" },
		"gateway outside":         func(s *agentapi.NetworkSpec) { s.Subnets[0].GatewayIP = "10.9.0.1" },
		"dns garbage":             func(s *agentapi.NetworkSpec) { s.Subnets[0].DNSNameservers = []string{"8.8.8.8\n"} },
		"subnet ID":               func(s *agentapi.NetworkSpec) { s.Subnets[0].ID = "s,tag:x" },
		"CIDR":                    func(s *agentapi.NetworkSpec) { s.Subnets[0].CIDR = "10.0.0.0/40" },
		"VNI":                     func(s *agentapi.NetworkSpec) { s.SegmentationID = 1 << 24 },
		"type":                    func(s *agentapi.NetworkSpec) { s.Type = "gre" },
		"peer":                    func(s *agentapi.NetworkSpec) { s.VXLANPeers = []string{"192.168.0.2"}; s.VXLANLocalIP = "" },
		"physical interface":      func(s *agentapi.NetworkSpec) { s.Type = "flat"; s.PhysicalInterface = "eth0;reboot" },
		"MTU":                     func(s *agentapi.NetworkSpec) { s.MTU = 10 },
		"no DHCP port IP":         func(s *agentapi.NetworkSpec) { s.Subnets[1].DHCPPortIP = "" },
	}
	for name, mutate := range bad {
		spec := testNetwork()
		mutate(&spec)
		if err := validateNetwork(&spec); !fault.Is(err, fault.Invalid) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

// FuzzDHCPHosts: whatever a tenant puts in a host entry, either it is
// refused or the hosts file gets exactly one well-formed line for it.
func FuzzDHCPHosts(f *testing.F) {
	f.Add("fa:16:3e:00:00:05", "10.0.0.5", "vm-one")
	f.Add("fa:16:3e:00:00:05", "10.0.0.5", "vm\nx")
	f.Add("FA-16-3E-00-00-05", "10.0.0.5,set:x", "a,b")
	f.Fuzz(func(t *testing.T, mac, ip, hostname string) {
		spec := testNetwork()
		spec.DHCPHosts = []agentapi.DHCPHost{{MAC: mac, IP: ip, Hostname: hostname}}
		if err := validateNetwork(&spec); err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("error of kind %v: %v", fault.KindOf(err), err)
			}
			return
		}
		c := buildDHCP("/s", spec)
		lines := strings.Split(strings.TrimSuffix(string(c.Hosts), "\n"), "\n")
		want := 3
		if hostname == "" {
			want = 2
		}
		if len(lines) != 1 || len(strings.Split(lines[0], ",")) != want {
			t.Fatalf("hosts file %q for %q %q %q", c.Hosts, mac, ip, hostname)
		}
	})
}
