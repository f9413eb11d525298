package netplane

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// dhcpLeaseSeconds is the lease time dnsmasq hands out (neutron's default).
const dhcpLeaseSeconds = 86400

// dnsDomain is the domain of instances' DNS names, <hostname>.openstacklocal,
// as neutron's default dns_domain; dnsmasq answers for them on the DHCP
// port and hands the domain out with the lease.
const dnsDomain = "openstacklocal"

// dhcpConfig is one network's dnsmasq, built from a validated spec: the
// command line, the two files it re-reads on SIGHUP, and the addresses of
// the DHCP port in the namespace.
type dhcpConfig struct {
	NS    string
	Dir   string
	Iface string // the DHCP port's device in the namespace
	Peer  string // its bridge-side end
	MAC   string
	Addrs []netip.Prefix
	Args  []string // dnsmasq's arguments (without the binary)
	Hosts []byte   // --dhcp-hostsfile
	Opts  []byte   // --dhcp-optsfile
}

func (c *dhcpConfig) pidFile() string   { return filepath.Join(c.Dir, "pid") }
func (c *dhcpConfig) hostsFile() string { return filepath.Join(c.Dir, "host") }
func (c *dhcpConfig) optsFile() string  { return filepath.Join(c.Dir, "opts") }

// dhcpDir is where a network's dnsmasq files live.
func dhcpDir(stateDir, netID string) string { return filepath.Join(stateDir, "dhcp", netID) }

// buildDHCP turns a validated NetworkSpec into its dnsmasq configuration;
// nil when the network has no DHCP port or no subnet with DHCP enabled.
// Every value written comes from a parsed address, MAC or checked hostname,
// never from the request's text.
func buildDHCP(stateDir string, spec agentapi.NetworkSpec) *dhcpConfig {
	if spec.DHCPPort == nil {
		return nil
	}
	c := &dhcpConfig{
		NS:    dhcpNS(spec.ID),
		Dir:   dhcpDir(stateDir, spec.ID),
		Iface: tapName(spec.DHCPPort.ID),
		Peer:  dhcpPeer(spec.DHCPPort.ID),
	}
	c.MAC, _ = parseMAC(spec.DHCPPort.MAC)
	c.Args = []string{
		"--no-hosts", "--no-resolv", "--strict-order", "--bind-interfaces",
		"--interface=" + c.Iface, "--except-interface=lo",
		"--conf-file=/dev/null",
		"--pid-file=" + c.pidFile(),
		"--dhcp-hostsfile=" + c.hostsFile(),
		"--dhcp-optsfile=" + c.optsFile(),
		"--leasefile-ro",
		"--domain=" + dnsDomain,
	}
	var opts bytes.Buffer
	var enabled []netip.Prefix
	for _, s := range spec.Subnets {
		if !s.EnableDHCP {
			continue
		}
		n, _ := parseNet(s.CIDR)
		enabled = append(enabled, n)
		tag := "subnet-" + s.ID
		c.Args = append(c.Args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%s,%ds",
			tag, n.Addr(), maskString(n.Bits()), dhcpLeaseSeconds))
		if a, err := parseIPv4(s.DHCPPortIP); err == nil {
			c.Addrs = append(c.Addrs, netip.PrefixFrom(a, n.Bits()))
		}
		// An empty router option stops dnsmasq offering itself as router.
		if gw, err := parseIPv4(s.GatewayIP); err == nil {
			fmt.Fprintf(&opts, "tag:%s,option:router,%s\n", tag, gw)
		} else {
			fmt.Fprintf(&opts, "tag:%s,option:router\n", tag)
		}
		if len(s.DNSNameservers) > 0 {
			var ds []string
			for _, d := range s.DNSNameservers {
				a, _ := parseIPv4(d)
				ds = append(ds, a.String())
			}
			fmt.Fprintf(&opts, "tag:%s,option:dns-server,%s\n", tag, strings.Join(ds, ","))
		}
		if spec.MTU > 0 {
			fmt.Fprintf(&opts, "tag:%s,option:mtu,%d\n", tag, spec.MTU)
		}
	}
	if len(enabled) == 0 {
		return nil
	}
	c.Args = append(c.Args, "--dhcp-lease-max="+strconv.Itoa(max(len(spec.DHCPHosts), 16)))
	var hosts bytes.Buffer
	for _, h := range spec.DHCPHosts {
		mac, _ := parseMAC(h.MAC)
		ip, _ := parseIPv4(h.IP)
		if h.Hostname != "" {
			fmt.Fprintf(&hosts, "%s,%s,%s\n", mac, h.Hostname, ip)
		} else {
			fmt.Fprintf(&hosts, "%s,%s\n", mac, ip)
		}
	}
	c.Hosts = hosts.Bytes()
	c.Opts = opts.Bytes()
	return c
}

// dnsmasqPID returns the pid of the running dnsmasq that uses pidFile and
// its arguments, or 0.
func dnsmasqPID(pidFile string) (int, []string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, nil
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, nil
	}
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	// Only a dnsmasq started for this very pid file is ours to signal.
	if len(args) < 2 || !slices.Contains(args[1:], "--pid-file="+pidFile) {
		return 0, nil
	}
	return pid, args[1:]
}

// ensureDnsmasq converges one network's dnsmasq: files written atomically,
// SIGHUP when only they changed, a restart when the command line changed.
func (p *Plane) ensureDnsmasq(ctx context.Context, c *dhcpConfig) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	// dnsmasq re-reads these as nobody after dropping root.
	hostsChanged, err := replaceIfChanged(c.hostsFile(), c.Hosts)
	if err != nil {
		return fmt.Errorf("dhcp hosts file: %w", err)
	}
	optsChanged, err := replaceIfChanged(c.optsFile(), c.Opts)
	if err != nil {
		return fmt.Errorf("dhcp opts file: %w", err)
	}
	pid, args := dnsmasqPID(c.pidFile())
	if pid != 0 && slices.Equal(args, c.Args) {
		if hostsChanged || optsChanged {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				return fmt.Errorf("reload dnsmasq %d: %w", pid, err)
			}
		}
		return nil
	}
	if pid != 0 {
		stopProcess(pid)
	}
	return p.startDnsmasq(ctx, c)
}

func (p *Plane) startDnsmasq(ctx context.Context, c *dhcpConfig) error {
	out, err := os.CreateTemp(c.Dir, ".start-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	// dnsmasq daemonizes; its parent exits once the daemon is up (or failed).
	// Output goes to a file, not a pipe the daemon could hold open.
	args := append([]string{"netns", "exec", c.NS, p.cfg.Dnsmasq}, c.Args...)
	cmd := exec.CommandContext(ctx, p.cfg.IP, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return fmt.Errorf("start dnsmasq in %s: %w: %s", c.NS, err, strings.TrimSpace(string(msg)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pid, _ := dnsmasqPID(c.pidFile()); pid != 0 {
			p.log.Info("dnsmasq started", "netns", c.NS, "pid", pid)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsmasq in %s wrote no pid file", c.NS)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replaceIfChanged writes data to path atomically when it differs.
func replaceIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	return true, writeFileAtomic(path, data, 0o644)
}

// stopProcess sends SIGTERM, then SIGKILL after a grace period, and waits.
func stopProcess(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// nsPIDs lists the processes living in a named namespace by comparing each
// process's net namespace with the namespace's inode.
func nsPIDs(name string) []int {
	var target syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, name), &target); err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == target.Ino && st.Dev == target.Dev {
			out = append(out, pid)
		}
	}
	return out
}

// stopNSProcesses stops every process in a namespace (its dnsmasq, and
// anything else left in it) so the namespace can go.
func stopNSProcesses(name string) {
	for _, pid := range nsPIDs(name) {
		stopProcess(pid)
	}
}
