package netplane_test

// Integration tests against the real kernel, iptables and dnsmasq. They
// skip with a reason when the host cannot run them (not root, tools
// missing) unless CI=true, where a skip would hide a regression and they
// fail instead.

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/agents/netplane"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// dhcpNetwork is a one-subnet network (10.0.0.0/24) with a DHCP port.
func dhcpNetwork(hosts ...agentapi.DHCPHost) agentapi.NetworkSpec {
	return agentapi.NetworkSpec{
		ID: newID(), Type: "vxlan", SegmentationID: randInt(1, 1<<24-1), MTU: 1450,
		DHCPPort: &agentapi.DHCPPort{ID: newID(), MAC: randMAC()},
		Subnets: []agentapi.SubnetSpec{{
			ID: newID(), CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true,
			DHCPStart: "10.0.0.2", DHCPEnd: "10.0.0.254", DNSNameservers: []string{"10.0.0.53"},
			DHCPPortIP: "10.0.0.2",
		}},
		DHCPHosts: hosts,
	}
}

// applyNetwork applies spec and deletes it at the end of the test.
func (e *env) applyNetwork(t *testing.T, spec agentapi.NetworkSpec) {
	t.Helper()
	t.Cleanup(func() { _ = e.plane.DeleteNetwork(ctx(t), spec.ID) })
	if err := e.plane.ApplyNetwork(ctx(t), spec); err != nil {
		t.Fatalf("ApplyNetwork: %v", err)
	}
}

func bridgeOf(id string) string { return "brq" + id[:11] }

// udhcpc runs busybox's DHCP client in the guest and returns the address
// it was offered, or "" when it got no lease.
func udhcpc(t *testing.T, g *guest, tries string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE $ip\"\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "exec", g.NS, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
		"-t", tries, "-T", "1", "-A", "1", "-s", script).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if ip, ok := strings.CutPrefix(strings.TrimSpace(line), "LEASE "); ok {
			return ip
		}
	}
	t.Logf("udhcpc in %s: no lease:\n%s", g.NS, out)
	return ""
}

func dnsmasqPID(t *testing.T, e *env, netID string) string {
	b, err := os.ReadFile(filepath.Join(e.stateDir, "dhcp", netID, "pid"))
	if err != nil {
		t.Fatalf("dnsmasq pid file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// Test 1: a guest whose MAC is in the hosts file gets exactly its static
// address; an unknown MAC gets nothing until it is added, which reloads
// dnsmasq with SIGHUP rather than restarting it.
func TestIntegrationNetworkDHCP(t *testing.T) {
	e := newEnv(t)
	known, unknown := randMAC(), randMAC()
	spec := dhcpNetwork(agentapi.DHCPHost{MAC: known, IP: "10.0.0.5", Hostname: "vm-one"})
	e.applyNetwork(t, spec)
	pid := dnsmasqPID(t, e, spec.ID)
	// Idempotent: a second apply leaves the same dnsmasq.
	e.applyNetwork(t, spec)
	if got := dnsmasqPID(t, e, spec.ID); got != pid {
		t.Errorf("re-apply restarted dnsmasq: %s -> %s", pid, got)
	}
	br := bridgeOf(spec.ID)
	if out := run(t, "ip", "-o", "link", "show", "master", br); !strings.Contains(out, "vxlan-") || !strings.Contains(out, "ns-"+spec.DHCPPort.ID[:11]) {
		t.Errorf("bridge %s ports:\n%s", br, out)
	}

	g := newGuest(t, br, "", known, "", "")
	if ip := udhcpc(t, g, "5"); ip != "10.0.0.5" {
		t.Errorf("known MAC got %q, want 10.0.0.5", ip)
	}
	stranger := newGuest(t, br, "", unknown, "", "")
	if ip := udhcpc(t, stranger, "2"); ip != "" {
		t.Errorf("unknown MAC got a lease: %s", ip)
	}

	spec.DHCPHosts = append(spec.DHCPHosts, agentapi.DHCPHost{MAC: unknown, IP: "10.0.0.6"})
	e.applyNetwork(t, spec)
	if got := dnsmasqPID(t, e, spec.ID); got != pid {
		t.Errorf("host update restarted dnsmasq: %s -> %s", pid, got)
	}
	if ip := udhcpc(t, stranger, "5"); ip != "10.0.0.6" {
		t.Errorf("added MAC got %q after reload, want 10.0.0.6", ip)
	}
}

// Test 2: from the host, a floating IP reaches a listener in the guest
// (DNAT); from the guest, the host sees the floating IP as the source
// (float SNAT) and a guest without one leaves as the router's gateway
// address (SNAT).
func TestIntegrationRouter(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(func() { _ = e.plane.DeleteExternal(ctx(t)) })
	if err := e.plane.EnsureExternal(ctx(t)); err != nil {
		t.Fatalf("EnsureExternal: %v", err)
	}
	if err := e.plane.EnsureExternal(ctx(t)); err != nil {
		t.Fatalf("EnsureExternal again: %v", err)
	}
	nw := agentapi.NetworkSpec{ID: newID(), Type: "local"}
	e.applyNetwork(t, nw)
	br := bridgeOf(nw.ID)
	withFIP := newGuest(t, br, "", randMAC(), "10.0.0.5/24", "10.0.0.1")
	noFIP := newGuest(t, br, "", randMAC(), "10.0.0.6/24", "10.0.0.1")
	listenIn(t, withFIP.NS, "10.0.0.5:2222")

	rt := agentapi.RouterSpec{
		ID: newID(),
		Interfaces: []agentapi.RouterInterface{{
			PortID: newID(), MAC: randMAC(), IPCIDR: "10.0.0.1/24", Bridge: br,
		}},
		Gateway: &agentapi.RouterGateway{
			PortID: newID(), MAC: randMAC(), IPCIDR: e.ext(10) + "/24", Bridge: e.extBr, GatewayIP: e.ext(1),
		},
		EnableSNAT:  true,
		FloatingIPs: []agentapi.FloatingIP{{FloatingIP: e.ext(20), FixedIP: "10.0.0.5"}},
	}
	t.Cleanup(func() { _ = e.plane.DeleteRouter(ctx(t), rt.ID) })
	if err := e.plane.ApplyRouter(ctx(t), rt); err != nil {
		t.Fatalf("ApplyRouter: %v", err)
	}
	if err := e.plane.ApplyRouter(ctx(t), rt); err != nil {
		t.Fatalf("ApplyRouter again: %v", err)
	}
	// The rules as iptables prints them are exactly what was written, so
	// the second apply above compared equal and changed nothing.
	nat := run(t, "ip", "netns", "exec", "qrouter-"+rt.ID, "iptables-save", "-t", "nat")
	for _, want := range []string{
		"-A neutron-l3-agent-PREROUTING -d " + e.ext(20) + "/32 -j DNAT --to-destination 10.0.0.5",
		"-A neutron-l3-agent-float-snat -s 10.0.0.5/32 -j SNAT --to-source " + e.ext(20),
		"-A neutron-l3-agent-snat -o qg-" + rt.Gateway.PortID[:11] + " -j SNAT --to-source " + e.ext(10),
	} {
		if strings.Count(nat, want) != 1 {
			t.Errorf("router nat table lacks exactly one %q:\n%s", want, nat)
		}
	}

	// The host forwards nothing between the external bridge and elsewhere.
	fence := run(t, "iptables-save", "-t", "filter")
	for _, want := range []string{
		"-A FORWARD -j nimbus-ext-" + e.extBr,
		"-A nimbus-ext-" + e.extBr + " -i " + e.extBr + " -o " + e.extBr + " -j ACCEPT",
		"-A nimbus-ext-" + e.extBr + " -i " + e.extBr + " -j DROP",
		"-A nimbus-ext-" + e.extBr + " -o " + e.extBr + " -j DROP",
	} {
		if strings.Count(fence, want) != 1 {
			t.Errorf("host filter lacks exactly one %q", want)
		}
	}

	// Host -> floating IP -> guest.
	reply, err := exchange(t, "", e.ext(20)+":2222", 5*time.Second)
	if err != nil || reply != "hello from "+e.ext(1) {
		t.Fatalf("host -> %s:2222: %q, %v", e.ext(20), reply, err)
	}

	// Guests -> host: the host sees the floating IP, or the gateway address.
	hl, err := net.Listen("tcp4", e.ext(1)+":0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, hl)
	if reply, err := exchange(t, withFIP.NS, hl.Addr().String(), 5*time.Second); err != nil || reply != "hello from "+e.ext(20) {
		t.Errorf("guest with floating IP -> host: %q, %v (want source %s)", reply, err, e.ext(20))
	}
	if reply, err := exchange(t, noFIP.NS, hl.Addr().String(), 5*time.Second); err != nil || reply != "hello from "+e.ext(10) {
		t.Errorf("guest without floating IP -> host: %q, %v (want source %s)", reply, err, e.ext(10))
	}

	// A session through the floating IP, open while it is removed.
	held, err := net.DialTimeout("tcp4", e.ext(20)+":2222", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// Converge: without the floating IP and SNAT, its address and rules go.
	rt.FloatingIPs, rt.EnableSNAT = nil, false
	if err := e.plane.ApplyRouter(ctx(t), rt); err != nil {
		t.Fatalf("ApplyRouter without floating IP: %v", err)
	}
	nat = run(t, "ip", "netns", "exec", "qrouter-"+rt.ID, "iptables-save", "-t", "nat")
	addrs := run(t, "ip", "-n", "qrouter-"+rt.ID, "-o", "addr")
	if strings.Contains(nat, e.ext(20)) || strings.Contains(addrs, e.ext(20)) || strings.Contains(nat, "--to-source "+e.ext(10)) {
		t.Errorf("floating IP or SNAT left:\n%s\n%s", nat, addrs)
	}
	if _, err := exchange(t, "", e.ext(20)+":2222", 2*time.Second); err == nil {
		t.Error("removed floating IP still reaches the guest")
	}
	if _, err := exec.LookPath("conntrack"); err == nil {
		_ = held.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintln(held, "late")
		if line, err := bufio.NewReader(held).ReadString('\n'); err == nil {
			t.Errorf("session survived its floating IP: %q", line)
		}
	} else {
		t.Log("conntrack not installed: not checking that sessions end with their floating IP")
	}
}

// udpDelivered sends a datagram from src (inside ns) to dst and reports
// whether the receiver got it.
func udpDelivered(t *testing.T, ns, src string, rc *net.UDPConn, dst string) bool {
	t.Helper()
	err := inNS(t, ns, func() error {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(mustAddrPort(src+":0")), net.UDPAddrFromAddrPort(mustAddrPort(dst)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(src))
		return err
	})
	if err != nil {
		t.Fatalf("send from %s: %v", src, err)
	}
	buf := make([]byte, 64)
	_ = rc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	for {
		n, _, err := rc.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == src {
			return true
		}
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// portSpec is the security of the guest port: allow all egress, plus rules.
func portSpec(g *guest, portID string, rules ...agentapi.SecurityRule) agentapi.PortSecuritySpec {
	return agentapi.PortSecuritySpec{
		PortID: portID, TapName: g.Tap, MAC: g.MAC, IPs: []string{"10.0.0.5"},
		PortSecurityEnabled: true,
		Rules:               append([]agentapi.SecurityRule{{Direction: "egress", EtherType: "IPv4"}}, rules...),
	}
}

// Test 3: ingress is denied until a rule allows it; a spoofed source from
// the guest is dropped while its own address passes. The client is a
// namespace on the same bridge: traffic the host itself originates is not
// bridged-forwarded, so the iptables_hybrid chains (like neutron's) only
// see guest-to-guest and routed traffic.
func TestIntegrationSecurityGroups(t *testing.T) {
	e := newEnv(t)
	nw := agentapi.NetworkSpec{ID: newID(), Type: "local"}
	e.applyNetwork(t, nw)
	br := bridgeOf(nw.ID)
	portID := newID()
	g := newGuest(t, br, "tap"+portID[:11], randMAC(), "10.0.0.5/24", "")
	client := newGuest(t, br, "", randMAC(), "10.0.0.9/24", "")
	listenIn(t, g.NS, "10.0.0.5:22")
	t.Cleanup(func() { _ = e.plane.DeletePortSecurity(ctx(t), portID) })

	// Without port security the guest is open: the setup works.
	if reply, err := exchange(t, client.NS, "10.0.0.5:22", 3*time.Second); err != nil {
		t.Fatalf("unfiltered guest unreachable: %q, %v", reply, err)
	}
	if err := e.plane.ApplyPortSecurity(ctx(t), portSpec(g, portID)); err != nil {
		t.Fatalf("ApplyPortSecurity: %v", err)
	}
	if reply, err := exchange(t, client.NS, "10.0.0.5:22", 2*time.Second); err == nil {
		t.Errorf("tcp/22 reached the guest without a rule: %q", reply)
	}
	ssh := agentapi.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: ptr(22), PortRangeMax: ptr(22), RemoteIPPrefix: "0.0.0.0/0"}
	if err := e.plane.ApplyPortSecurity(ctx(t), portSpec(g, portID, ssh)); err != nil {
		t.Fatalf("ApplyPortSecurity with ssh: %v", err)
	}
	if reply, err := exchange(t, client.NS, "10.0.0.5:22", 3*time.Second); err != nil || reply != "hello from 10.0.0.9" {
		t.Errorf("tcp/22 with the rule: %q, %v", reply, err)
	}
	// The chains as iptables prints them are what was written: re-applying
	// leaves the ssh rule once.
	if err := e.plane.ApplyPortSecurity(ctx(t), portSpec(g, portID, ssh)); err != nil {
		t.Fatal(err)
	}
	rules := run(t, "iptables-save", "-t", "filter")
	if n := strings.Count(rules, "-A neutron-openvswi-i"+portID[:10]+" -p tcp -m tcp --dport 22 -j RETURN"); n != 1 {
		t.Errorf("ssh rule appears %d times:\n%s", n, rules)
	}

	// Anti-spoofing: the port's own address passes, another one is dropped.
	var rc *net.UDPConn
	if err := inNS(t, client.NS, func() (err error) {
		rc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(mustAddrPort("10.0.0.9:5353")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	run(t, "ip", "-n", g.NS, "addr", "add", "10.0.0.77/24", "dev", "eth0")
	if !udpDelivered(t, g.NS, "10.0.0.5", rc, "10.0.0.9:5353") {
		t.Error("datagram from the port's own address was dropped")
	}
	if udpDelivered(t, g.NS, "10.0.0.77", rc, "10.0.0.9:5353") {
		t.Error("datagram from a spoofed address was delivered")
	}
	// An allowed address pair makes that source legitimate.
	spec := portSpec(g, portID, ssh)
	spec.AllowedAddressPairs = []agentapi.AddressPair{{IPAddress: "10.0.0.64/26"}}
	if err := e.plane.ApplyPortSecurity(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	if !udpDelivered(t, g.NS, "10.0.0.77", rc, "10.0.0.9:5353") {
		t.Error("datagram from an allowed address pair was dropped")
	}
}

func ptr(n int) *int { return &n }

// Test 4: deleting a router, a network and a port's security leaves no
// namespace, link, dnsmasq or chain behind; so does Cleanup after a
// "restart" that forgot them.
func TestIntegrationTeardown(t *testing.T) {
	e := newEnv(t)
	build := func() (agentapi.NetworkSpec, agentapi.RouterSpec, string, []string) {
		nw := dhcpNetwork(agentapi.DHCPHost{MAC: randMAC(), IP: "10.0.0.5", Hostname: "vm"})
		e.applyNetwork(t, nw)
		br := bridgeOf(nw.ID)
		rt := agentapi.RouterSpec{
			ID: newID(),
			Interfaces: []agentapi.RouterInterface{{
				PortID: newID(), MAC: randMAC(), IPCIDR: "10.0.0.1/24", Bridge: br,
			}},
			Gateway: &agentapi.RouterGateway{
				PortID: newID(), MAC: randMAC(), IPCIDR: e.ext(10) + "/24", Bridge: e.extBr, GatewayIP: e.ext(1),
			},
			EnableSNAT: true, FloatingIPs: []agentapi.FloatingIP{{FloatingIP: e.ext(20), FixedIP: "10.0.0.5"}},
		}
		t.Cleanup(func() { _ = e.plane.DeleteRouter(ctx(t), rt.ID) })
		if err := e.plane.ApplyRouter(ctx(t), rt); err != nil {
			t.Fatalf("ApplyRouter: %v", err)
		}
		portID := newID()
		g := newGuest(t, br, "tap"+portID[:11], randMAC(), "10.0.0.5/24", "10.0.0.1")
		t.Cleanup(func() { _ = e.plane.DeletePortSecurity(ctx(t), portID) })
		if err := e.plane.ApplyPortSecurity(ctx(t), portSpec(g, portID)); err != nil {
			t.Fatalf("ApplyPortSecurity: %v", err)
		}
		// What must be gone afterwards, as the host lists it. The guest
		// namespace and its veth are the test's own and outlive the plane's.
		names := []string{
			"qdhcp-" + nw.ID, "qrouter-" + rt.ID, br, "vxlan-" + itoa(nw.SegmentationID) + ":",
			"ns-" + nw.DHCPPort.ID[:11], "tqr-" + rt.Interfaces[0].PortID[:11], "tqg-" + rt.Gateway.PortID[:11],
			filepath.Join(e.stateDir, "dhcp", nw.ID), "neutron-openvswi-i" + portID[:10],
			"neutron-openvswi-o" + portID[:10], "neutron-openvswi-s" + portID[:10],
		}
		s := snapshot(t)
		all := s.Namespaces + s.Links + s.Processes + s.Rules
		for _, n := range names {
			if !strings.Contains(all, n) {
				t.Fatalf("%q not found after apply; the teardown check would prove nothing", n)
			}
		}
		return nw, rt, portID, names
	}
	if err := e.plane.EnsureExternal(ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.plane.DeleteExternal(ctx(t)) })

	nw, rt, portID, names := build()
	if err := e.plane.DeleteRouter(ctx(t), rt.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.plane.DeleteNetwork(ctx(t), nw.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.plane.DeletePortSecurity(ctx(t), portID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, names...)
	// Deleting again is fine (idempotent).
	if err := e.plane.DeleteNetwork(ctx(t), nw.ID); err != nil {
		t.Error(err)
	}

	// A restarted agent keeps what the controller still has (here: other
	// runs' resources, whatever is on the host) and removes the rest.
	nw, rt, portID, names = build()
	inv, err := e.plane.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !contains(inv.DHCPNetworks, nw.ID) || !contains(inv.Routers, rt.ID) || !contains(inv.Ports, portID[:10]) || !contains(inv.Bridges, bridgeOf(nw.ID)) {
		t.Fatalf("List misses ours: %+v", inv)
	}
	// Func keeps every resource but ours, including other runs' made
	// after List.
	mine := map[string]bool{"network/" + nw.ID: true, "bridge/" + bridgeOf(nw.ID): true, "router/" + rt.ID: true, "port/" + portID[:10]: true}
	keep := netplane.Keep{Func: func(kind, id string) bool { return !mine[kind+"/"+id] }}
	if err := e.plane.Cleanup(ctx(t), keep); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	assertGone(t, names...)

	if err := e.plane.DeleteExternal(ctx(t)); err != nil {
		t.Fatal(err)
	}
	assertGone(t, e.extBr)
}

func itoa(n int) string { return strconv.Itoa(n) }

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// A failed apply undoes what it created: the namespace of a router whose
// leg cannot be plugged, the bridge of a network whose uplink is missing.
func TestIntegrationFailureRollsBack(t *testing.T) {
	e := newEnv(t)
	rt := agentapi.RouterSpec{ID: newID(), Interfaces: []agentapi.RouterInterface{{
		PortID: newID(), MAC: randMAC(), IPCIDR: "10.0.0.1/24", Bridge: "brqnoexist" + randHex(4),
	}}}
	t.Cleanup(func() { _ = e.plane.DeleteRouter(ctx(t), rt.ID) })
	if err := e.plane.ApplyRouter(ctx(t), rt); err == nil {
		t.Fatal("router on a missing bridge applied")
	}
	nw := agentapi.NetworkSpec{ID: newID(), Type: "flat", PhysicalInterface: "nx" + randHex(8)}
	t.Cleanup(func() { _ = e.plane.DeleteNetwork(ctx(t), nw.ID) })
	if err := e.plane.ApplyNetwork(ctx(t), nw); !fault.Is(err, fault.Invalid) {
		t.Fatalf("flat network on a missing NIC: %v, want Invalid", err)
	}
	assertGone(t, "qrouter-"+rt.ID, bridgeOf(nw.ID), "tqr-"+rt.Interfaces[0].PortID[:11])
}

// VXLAN: an FDB flood entry per peer, converged when peers leave, and the
// old device removed when the VNI changes. Peers are loopback addresses so
// nothing leaves the host.
func TestIntegrationVXLANPeers(t *testing.T) {
	e := newEnv(t)
	nw := agentapi.NetworkSpec{ID: newID(), Type: "vxlan", SegmentationID: randInt(1, 1<<24-1),
		VXLANLocalIP: "127.0.0.1", VXLANPeers: []string{"127.0.0.2", "127.0.0.3"}}
	e.applyNetwork(t, nw)
	dev := "vxlan-" + itoa(nw.SegmentationID)
	fdb := run(t, "bridge", "fdb", "show", "dev", dev)
	if !strings.Contains(fdb, "dst 127.0.0.2") || !strings.Contains(fdb, "dst 127.0.0.3") {
		t.Errorf("fdb of %s:\n%s", dev, fdb)
	}
	nw.VXLANPeers = []string{"127.0.0.3"}
	e.applyNetwork(t, nw)
	fdb = run(t, "bridge", "fdb", "show", "dev", dev)
	if strings.Contains(fdb, "dst 127.0.0.2") || !strings.Contains(fdb, "dst 127.0.0.3") {
		t.Errorf("fdb of %s after a peer left:\n%s", dev, fdb)
	}
	old := nw.SegmentationID
	nw.SegmentationID = old%(1<<24-2) + 1
	e.applyNetwork(t, nw)
	links := run(t, "ip", "-o", "link", "show", "master", bridgeOf(nw.ID))
	if strings.Contains(links, dev+":") || !strings.Contains(links, "vxlan-"+itoa(nw.SegmentationID)+":") {
		t.Errorf("bridge ports after the VNI changed:\n%s", links)
	}
	if err := e.plane.DeleteNetwork(ctx(t), nw.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, bridgeOf(nw.ID), dev+":", "vxlan-"+itoa(nw.SegmentationID)+":")
}
