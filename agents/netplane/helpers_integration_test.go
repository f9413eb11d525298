package netplane_test

// Helpers of the integration tests: real namespaces and veths stand in for
// guests. Every name is short and random so parallel runs do not collide,
// and t.Cleanup removes everything even on failure.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/nimbus-cloud/nimbus/agents/netplane"
)

// requireNetRoot skips (or, under CI=true, fails) unless the host can run
// the data plane for real.
func requireNetRoot(t *testing.T) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true, netplane integration test cannot run: "+format, args...)
		}
		t.Skipf("netplane integration test skipped: "+format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, bridges, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save", "dnsmasq", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s not installed (apt-get install iproute2 iptables dnsmasq-base busybox-static)", tool)
		}
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		skip("br_netfilter not available (modprobe br_netfilter)")
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// newID returns a UUID-shaped random ID (its first 11 characters are
// random, so every name derived from it is unique).
func newID() string {
	return fmt.Sprintf("%s-%s-4%s-8%s-%s", randHex(8), randHex(4), randHex(3), randHex(3), randHex(12))
}

func randMAC() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

func randInt(lo, hi int) int {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)))
	return lo + int(n.Int64())
}

// env is one test's plane with its own external bridge and subnet
// (172.24.<octet>.0/24, random so parallel runs do not share routes).
type env struct {
	plane    *netplane.Plane
	stateDir string
	extBr    string
	octet    int
}

func (e *env) ext(host int) string { return fmt.Sprintf("172.24.%d.%d", e.octet, host) }

func newEnv(t *testing.T) *env {
	t.Helper()
	requireNetRoot(t)
	// dnsmasq re-reads its files as nobody: the state dir must be traversable.
	dir, err := os.MkdirTemp("", "netplane-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{stateDir: dir, extBr: "bx" + randHex(8), octet: randInt(100, 250)}
	e.plane, err = netplane.New(netplane.Config{
		StateDir: dir, ExternalBridge: e.extBr, ExternalCIDR: e.ext(1) + "/24",
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// guest is a namespace with eth0, a veth whose peer (Tap) is a port of a
// bridge: what a VM's tap looks like to the host.
type guest struct {
	NS  string
	Tap string
	MAC string
}

// newGuest plugs a guest into bridge. tap "" picks a random peer name.
// cidr and gw may be empty (DHCP guests).
func newGuest(t *testing.T, bridge, tap, mac, cidr, gw string) *guest {
	t.Helper()
	g := &guest{NS: "ntg-" + randHex(8), Tap: tap, MAC: mac}
	if g.Tap == "" {
		g.Tap = "tg" + randHex(10)
	}
	run(t, "ip", "netns", "add", g.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", g.NS).Run() })
	run(t, "ip", "link", "add", g.Tap, "type", "veth", "peer", "name", "eth0", "netns", g.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", g.Tap).Run() })
	run(t, "ip", "link", "set", g.Tap, "master", bridge, "up")
	run(t, "ip", "-n", g.NS, "link", "set", "eth0", "address", mac)
	run(t, "ip", "-n", g.NS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", g.NS, "link", "set", "lo", "up")
	if cidr != "" {
		run(t, "ip", "-n", g.NS, "addr", "add", cidr, "dev", "eth0")
	}
	if gw != "" {
		run(t, "ip", "-n", g.NS, "route", "add", "default", "via", gw)
	}
	return g
}

// inNS runs f on an OS thread inside the named namespace; sockets opened
// there stay in it.
func inNS(t *testing.T, ns string, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- err // the thread stays locked and dies
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// echoServer accepts connections on l and answers each line with
// "<line> from <peer address>".
func echoServer(t *testing.T, l net.Listener) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s from %s\n", strings.TrimSpace(line), host)
			}()
		}
	}()
}

// listenIn starts an echo server on addr inside ns.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNS(t, ns, func() (err error) { l, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	echoServer(t, l)
	return l
}

// exchange dials addr (from ns, or the host when ns is ""), sends a line
// and returns the answer.
func exchange(t *testing.T, ns, addr string, timeout time.Duration) (string, error) {
	t.Helper()
	var c net.Conn
	dial := func() (err error) { c, err = net.DialTimeout("tcp4", addr, timeout); return err }
	var err error
	if ns == "" {
		err = dial()
	} else {
		err = inNS(t, ns, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(c, "hello"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// hostState is what the teardown checks look at.
type hostState struct {
	Namespaces, Links, Processes, Rules string
}

func snapshot(t *testing.T) hostState {
	t.Helper()
	ps, _ := exec.Command("ps", "-eo", "pid,args").CombinedOutput()
	if len(ps) == 0 {
		// No procps: read /proc directly.
		ents, _ := os.ReadDir("/proc")
		var b strings.Builder
		for _, e := range ents {
			cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil {
				b.WriteString(e.Name() + " " + strings.ReplaceAll(string(cmd), "\x00", " ") + "\n")
			}
		}
		ps = []byte(b.String())
	}
	return hostState{
		Namespaces: run(t, "ip", "netns", "list"),
		Links:      run(t, "ip", "-o", "link"),
		Processes:  string(ps),
		Rules:      run(t, "iptables-save"),
	}
}

// assertGone fails for every name still present in the host's state.
func assertGone(t *testing.T, names ...string) {
	t.Helper()
	s := snapshot(t)
	for _, n := range names {
		for what, text := range map[string]string{"namespace": s.Namespaces, "link": s.Links, "process": s.Processes, "iptables rule": s.Rules} {
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, n) {
					t.Errorf("%s %q left behind: %s", what, n, line)
				}
			}
		}
	}
}
