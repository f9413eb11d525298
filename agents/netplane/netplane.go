// Package netplane is the node agent's network data plane (DESIGN.md §5): a
// Linux bridge per tenant network (VXLAN between hosts), a dnsmasq per
// network in a qdhcp-<net> namespace, routers as qrouter-<id> namespaces with
// the NAT rules an OpenStack L3 agent writes, and security groups as per-port
// iptables chains on the host (the iptables_hybrid model).
//
// Every method applies a whole desired state and converges: calling it twice
// changes nothing, and what is not in the spec is removed. Everything created
// is named after its owner, so List and Cleanup can reconcile after a restart.
package netplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// Config configures a Plane.
type Config struct {
	// StateDir holds dnsmasq's files under StateDir/dhcp/<network>/. It must
	// be traversable by dnsmasq's unprivileged user (nobody), which re-reads
	// the host file on SIGHUP.
	StateDir string
	// ExternalBridge is the external network's bridge ("br-ex").
	ExternalBridge string
	// ExternalCIDR is the host's address on it ("172.24.4.1/24").
	ExternalCIDR string
	// Dnsmasq is the dnsmasq binary; "" finds it on PATH.
	Dnsmasq string
	// IP is the iproute2 binary; "" finds it on PATH.
	IP string
	// LockFile serializes the host's shared iptables chains between
	// processes (a restarting agent, parallel test runs); default
	// /run/nimbus-netplane.lock.
	LockFile string
	Logger   *slog.Logger
}

// Plane is the network data plane of one host. Its methods are safe for
// concurrent use; they are serialized.
type Plane struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	lockFile *os.File

	// mdMu guards the metadata fetcher and the proxies, by router ID; it
	// is taken inside mu, never the other way round.
	mdMu    sync.Mutex
	fetcher agentapi.MetadataFetcher
	proxies map[string]*http.Server
	// host is the iptables of the host's namespace (filter: security
	// groups, the external bridge's fence).
	host iptables
	// inNS returns the iptables of a named network namespace.
	inNS func(ns string) iptables
	// sys does everything that is not iptables: links, namespaces,
	// processes. Nil in unit tests that exercise only rules.
	sys *system
}

// New returns a Plane for this host. It needs root, iproute2, iptables and
// dnsmasq; it creates nothing until a method is called.
func New(cfg Config) (*Plane, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("netplane: StateDir is required")
	}
	if cfg.ExternalBridge == "" {
		cfg.ExternalBridge = "br-ex"
	}
	if err := validIfName(cfg.ExternalBridge); err != nil {
		return nil, fmt.Errorf("netplane: external bridge: %w", err)
	}
	if cfg.ExternalCIDR == "" {
		cfg.ExternalCIDR = "172.24.4.1/24"
	}
	if _, err := parseIPCIDR(cfg.ExternalCIDR); err != nil {
		return nil, fmt.Errorf("netplane: external CIDR: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.Dnsmasq == "" {
		if cfg.Dnsmasq, err = exec.LookPath("dnsmasq"); err != nil {
			return nil, fmt.Errorf("netplane: dnsmasq not found (apt-get install dnsmasq-base): %w", err)
		}
	}
	if cfg.IP == "" {
		if cfg.IP, err = exec.LookPath("ip"); err != nil {
			return nil, fmt.Errorf("netplane: ip not found (apt-get install iproute2): %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "dhcp"), 0o755); err != nil {
		return nil, fmt.Errorf("netplane: state dir: %w", err)
	}
	if cfg.LockFile == "" {
		cfg.LockFile = "/run/nimbus-netplane.lock"
	}
	lf, err := os.OpenFile(cfg.LockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netplane: lock file: %w", err)
	}
	host, err := newHostIPTables()
	if err != nil {
		return nil, fmt.Errorf("netplane: iptables: %w", err)
	}
	p := &Plane{cfg: cfg, log: cfg.Logger, host: host, sys: &system{ip: cfg.IP}, lockFile: lf}
	p.inNS = func(ns string) iptables { return nsIPTables{ns: ns, inner: host} }
	return p, nil
}

// lock serializes the plane's methods within the process and, through an
// flock on LockFile, with other processes on the host.
func (p *Plane) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.lockFile != nil {
		if err := syscall.Flock(int(p.lockFile.Fd()), syscall.LOCK_EX); err != nil {
			p.mu.Unlock()
			return fmt.Errorf("netplane: lock: %w", err)
		}
	}
	return nil
}

func (p *Plane) unlock() {
	if p.lockFile != nil {
		_ = syscall.Flock(int(p.lockFile.Fd()), syscall.LOCK_UN)
	}
	p.mu.Unlock()
}

// Close releases the plane's host lock file. The data plane itself stays
// up: dnsmasqs, namespaces and rules outlive the agent.
func (p *Plane) Close() error {
	if p.lockFile == nil {
		return nil
	}
	return p.lockFile.Close()
}

// reverter undoes completed steps in reverse order unless Success is called
// (incus's revert package, reduced to what this package needs).
type reverter struct{ undo []func() }

func (r *reverter) Add(f func()) { r.undo = append(r.undo, f) }

// Fail runs the undo steps, newest first.
func (r *reverter) Fail() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.undo = nil
}

// Success forgets the undo steps.
func (r *reverter) Success() { r.undo = nil }
