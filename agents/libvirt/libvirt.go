// Package libvirt is the node agent's compute driver for QEMU/KVM through
// libvirtd's local socket (DESIGN §4). It speaks libvirt's RPC protocol
// with github.com/digitalocean/go-libvirt, kept behind a small interface so
// the driver's logic is unit-tested against a fake that keeps state. Each
// instance is a persistent domain named nimbus-<uuid> whose files (qcow2
// overlay on a cached base image, extra disks, config drive, serial log)
// live in StateDir/instances/<uuid> and go away with it.
package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Virtualisation types for Config.VirtType.
const (
	VirtAuto = "auto"
	VirtKVM  = "kvm"
	VirtQEMU = "qemu"
)

// DefaultSocket is libvirtd's local socket.
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// Config configures the driver. Zero values take the defaults.
type Config struct {
	// StateDir is the agent's state directory; instance files live in
	// StateDir/instances and the virt_type probe's verdict in
	// StateDir/virt_type.json. Required.
	StateDir string
	// Socket is libvirtd's unix socket (DefaultSocket). libvirt is never
	// reached over TCP.
	Socket string
	// VirtType is "auto" (default), "kvm" or "qemu" (TCG).
	VirtType string
	// ProbeImage is a bootable disk image that "auto" boots under KVM to
	// see whether KVM really runs guests (the tiny image). Without it the
	// probe can only run firmware, which proves much less.
	ProbeImage string
	// ProbeFormat is ProbeImage's format; "qcow2" by default.
	ProbeFormat string
	// ProbeTimeout is how long the probe guest must stay healthy, unless
	// it reports "nimbus-guest: ready" sooner; 20 s. On a nested host that
	// cannot run kernels the tiny guest dies about 6 s in (the firmware
	// loads the kernel slowly there), so a shorter window would pass it.
	ProbeTimeout time.Duration
	// ShutdownTimeout bounds a graceful (ACPI) shutdown before the domain
	// is destroyed; 60 s.
	ShutdownTimeout time.Duration
	// DetachTimeout bounds how long a running guest has to release a NIC
	// being hot-unplugged (the guest's OS must acknowledge it); 30 s.
	DetachTimeout time.Duration
	// HostIP is reported in the inventory; empty means the first global
	// IPv4 address of the host.
	HostIP string
	// QemuLogDir is where libvirtd writes each domain's QEMU log; the probe
	// reads it and Destroy removes the instance's. /var/log/libvirt/qemu.
	QemuLogDir string
	// Logger receives the driver's logs; nil is slog.Default().
	Logger *slog.Logger
}

// Driver is the libvirt compute driver. It is safe for concurrent use; the
// agent serialises work on each instance.
type Driver struct {
	cfg      Config
	log      *slog.Logger
	c        conn
	virtType string
	tools    tools
	events   chan agentapi.Event
	// kvmDevice is /dev/kvm; tests point it elsewhere.
	kvmDevice string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// destroyed remembers instances this driver destroyed lately, so the
	// lifecycle events libvirt delivers after their files are gone (stopped,
	// deleted) still count as ours.
	mu        sync.Mutex
	destroyed map[string]time.Time
}

// destroyedMemory is how long a destroyed instance's late events are kept.
const destroyedMemory = 2 * time.Minute

var _ agent.Driver = (*Driver)(nil)

// New connects to libvirtd, settles the virtualisation type (probing once
// for "auto") and starts listening for lifecycle events.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if err := checkReachable(cfg.StateDir); err != nil {
		return nil, err
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(cfg.Socket), dialers.WithLocalTimeout(5*time.Second)))
	return newDriver(ctx, cfg, l, execTools{}, "/dev/kvm")
}

// checkReachable refuses a state directory QEMU could not reach: QEMU runs
// as its own user (libvirt-qemu), so every directory above the instance
// files must be traversable by others. Without this check every boot would
// fail later with a permission error buried in libvirt's log.
func checkReachable(stateDir string) error {
	if stateDir == "" {
		return nil
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("libvirt: state dir %q: %w", stateDir, err)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fault.Invalidf("QEMU (user libvirt-qemu) cannot reach the state directory %s: %s has mode %#o; "+
				"make it traversable with `chmod o+x %s` or choose another directory", abs, dir, fi.Mode().Perm(), dir)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// newDriver builds a driver over any conn, so tests can pass a fake.
func newDriver(ctx context.Context, cfg Config, c conn, t tools, kvmDevice string) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("libvirt: StateDir is required")
	}
	if cfg.VirtType == "" {
		cfg.VirtType = VirtAuto
	}
	if cfg.VirtType != VirtAuto && cfg.VirtType != VirtKVM && cfg.VirtType != VirtQEMU {
		return nil, fmt.Errorf("libvirt: virt_type %q is not auto, kvm or qemu", cfg.VirtType)
	}
	if cfg.ProbeFormat == "" {
		cfg.ProbeFormat = "qcow2"
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 20 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 60 * time.Second
	}
	if cfg.DetachTimeout <= 0 {
		cfg.DetachTimeout = 30 * time.Second
	}
	if cfg.QemuLogDir == "" {
		cfg.QemuLogDir = "/var/log/libvirt/qemu"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// qemu runs as its own user and must reach the instance files below.
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "instances")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("libvirt: create %s: %w", dir, err)
		}
	}
	if err := c.Connect(); err != nil {
		return nil, fmt.Errorf("libvirt: connect to libvirtd at %s: %w", cfg.Socket, err)
	}
	d := &Driver{cfg: cfg, log: log.With("component", "libvirt"), c: c, tools: t, kvmDevice: kvmDevice,
		events: make(chan agentapi.Event, 4096)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	vt, err := d.resolveVirtType(ctx)
	if err != nil {
		d.cancel()
		_ = c.Disconnect()
		return nil, err
	}
	d.virtType = vt
	d.wg.Add(1)
	go d.watchEvents()
	return d, nil
}

// VirtType is the domain type instances get: "kvm" or "qemu".
func (d *Driver) VirtType() string { return d.virtType }

// Close stops the event stream and disconnects from libvirtd. Domains keep
// running: the agent's restart must not touch guests.
func (d *Driver) Close() error {
	d.cancel()
	err := d.c.Disconnect()
	d.wg.Wait()
	return err
}

// Events delivers lifecycle events of Nimbus domains.
func (d *Driver) Events() <-chan agentapi.Event { return d.events }

// watchEvents forwards libvirt's lifecycle events and, when libvirtd goes
// away (a restart, an upgrade), reconnects and subscribes again.
func (d *Driver) watchEvents() {
	defer d.wg.Done()
	delay := 500 * time.Millisecond
	for d.ctx.Err() == nil {
		ch, err := d.c.LifecycleEvents(d.ctx)
		if err == nil {
			delay = 500 * time.Millisecond
			for msg := range ch {
				if ev, ok := mapEvent(msg); ok && d.owns(ev.UUID) {
					d.emit(ev)
				}
			}
		} else {
			d.log.Warn("cannot subscribe to libvirt lifecycle events", "err", err)
		}
		if d.ctx.Err() != nil {
			return
		}
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
		select {
		case <-d.c.Disconnected():
			if err := d.c.Connect(); err != nil {
				d.log.Warn("libvirtd unreachable; retrying", "err", err)
			} else {
				d.log.Info("reconnected to libvirtd")
			}
		default:
		}
	}
}

// emit queues an event without ever blocking the driver.
func (d *Driver) emit(ev agentapi.Event) {
	select {
	case d.events <- ev:
	default:
		d.log.Warn("lifecycle event dropped; the agent is behind", "uuid", ev.UUID, "kind", ev.Kind)
	}
}

// uuidOfName returns the instance UUID of a Nimbus domain name, false for
// any other domain (including the virt_type probe).
func uuidOfName(name string) (string, bool) {
	u, ok := strings.CutPrefix(name, "nimbus-")
	if !ok || len(u) != 36 || strings.Count(u, "-") != 4 {
		return "", false
	}
	return u, true
}

// mapEvent turns a libvirt lifecycle event into the agent's vocabulary.
func mapEvent(m golibvirt.DomainEventLifecycleMsg) (agentapi.Event, bool) {
	uuid, ok := uuidOfName(m.Dom.Name)
	if !ok {
		return agentapi.Event{}, false
	}
	ev := agentapi.Event{UUID: uuid, Time: time.Now().UTC()}
	switch golibvirt.DomainEventType(m.Event) {
	case golibvirt.DomainEventUndefined:
		ev.Kind, ev.PowerState = agentapi.EventDeleted, agentapi.PowerNoState
	case golibvirt.DomainEventStarted:
		ev.Kind, ev.PowerState = agentapi.EventStarted, agentapi.PowerRunning
	case golibvirt.DomainEventSuspended:
		ev.Kind, ev.PowerState = agentapi.EventPaused, agentapi.PowerPaused
	case golibvirt.DomainEventResumed:
		ev.Kind, ev.PowerState = agentapi.EventResumed, agentapi.PowerRunning
	case golibvirt.DomainEventStopped:
		switch golibvirt.DomainEventStoppedDetailType(m.Detail) {
		case golibvirt.DomainEventStoppedShutdown:
			ev.Kind, ev.PowerState = agentapi.EventShutdown, agentapi.PowerShutdown
		case golibvirt.DomainEventStoppedSaved:
			ev.Kind, ev.PowerState = agentapi.EventSuspended, agentapi.PowerSuspended
		case golibvirt.DomainEventStoppedCrashed, golibvirt.DomainEventStoppedFailed:
			ev.Kind, ev.PowerState = agentapi.EventCrashed, agentapi.PowerCrashed
		default:
			ev.Kind, ev.PowerState = agentapi.EventStopped, agentapi.PowerShutdown
		}
	case golibvirt.DomainEventPmsuspended:
		ev.Kind, ev.PowerState = agentapi.EventSuspended, agentapi.PowerSuspended
	case golibvirt.DomainEventCrashed:
		ev.Kind, ev.PowerState = agentapi.EventCrashed, agentapi.PowerCrashed
	default:
		return agentapi.Event{}, false // defined, shutting down: a later event tells the outcome
	}
	return ev, true
}

// lookup finds an instance's domain.
func (d *Driver) lookup(uuid string) (golibvirt.Domain, error) {
	if _, ok := uuidOfName(domainName(uuid)); !ok {
		return golibvirt.Domain{}, fault.Invalidf("%q is not an instance UUID.", uuid)
	}
	dom, err := d.c.DomainLookupByName(domainName(uuid))
	return dom, translate(err, uuid, "find")
}

// power returns a domain's Nova power state. A shut-off domain with a
// managed-save image is suspended.
func (d *Driver) power(dom golibvirt.Domain) (int, error) {
	st, _, err := d.c.DomainGetState(dom, 0)
	if err != nil {
		return agentapi.PowerNoState, err
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked, golibvirt.DomainShutdown:
		return agentapi.PowerRunning, nil
	case golibvirt.DomainPaused:
		return agentapi.PowerPaused, nil
	case golibvirt.DomainShutoff:
		if has, err := d.c.DomainHasManagedSaveImage(dom, 0); err == nil && has == 1 {
			return agentapi.PowerSuspended, nil
		}
		return agentapi.PowerShutdown, nil
	case golibvirt.DomainCrashed:
		return agentapi.PowerCrashed, nil
	case golibvirt.DomainPmsuspended:
		return agentapi.PowerSuspended, nil
	}
	return agentapi.PowerNoState, nil
}

func (d *Driver) stateOf(uuid string, dom golibvirt.Domain) agentapi.InstanceState {
	st := agentapi.InstanceState{UUID: uuid}
	p, err := d.power(dom)
	if err != nil {
		st.Error = fmt.Sprintf("read domain state: %v", err)
		return st
	}
	st.PowerState = p
	if p == agentapi.PowerRunning || p == agentapi.PowerPaused {
		if x, err := d.c.DomainGetXMLDesc(dom, 0); err == nil {
			st.VNCPort = vncPortOf(x)
		}
	}
	return st
}

// State reports one instance. Kinds: NotFound, Invalid, Internal.
func (d *Driver) State(_ context.Context, uuid string) (agentapi.InstanceState, error) {
	dom, err := d.lookup(uuid)
	if err != nil {
		return agentapi.InstanceState{}, err
	}
	st := d.stateOf(uuid, dom)
	if st.Error != "" {
		return st, fault.New(fault.Internal, "read state of instance %s: %s", uuid, st.Error)
	}
	return st, nil
}

// List reports every Nimbus domain on the host, whether the controller
// knows it or not. Kinds: Internal.
func (d *Driver) List(context.Context) ([]agentapi.InstanceState, error) {
	doms, _, err := d.c.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "list domains")
	}
	out := []agentapi.InstanceState{}
	for _, dom := range doms {
		if uuid, ok := uuidOfName(dom.Name); ok && d.owns(uuid) {
			out = append(out, d.stateOf(uuid, dom))
		}
	}
	return out, nil
}

// owns reports whether this driver built the instance: its directory lives
// in this agent's state directory. Several agents may share one libvirtd
// (two hosts on one machine); each must report only its own domains, or the
// controller would take the others' for orphans and reap them.
func (d *Driver) owns(uuid string) bool {
	if _, err := os.Stat(d.paths(uuid).dir); err == nil {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.destroyed[uuid]
	return ok && time.Since(at) < destroyedMemory
}

// forget records that uuid is being destroyed (see Driver.destroyed) and
// drops records that have aged out.
func (d *Driver) forget(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.destroyed == nil {
		d.destroyed = map[string]time.Time{}
	}
	now := time.Now()
	for u, at := range d.destroyed {
		if now.Sub(at) >= destroyedMemory {
			delete(d.destroyed, u)
		}
	}
	d.destroyed[uuid] = now
}

// maxConsoleBytes is how much of a console log is read: the tail is what
// users want, and a chatty guest must not make the agent read gigabytes.
const maxConsoleBytes = 1 << 20

// ConsoleLog returns the last lines of the instance's serial console.
// Kinds: NotFound, Invalid, Internal.
func (d *Driver) ConsoleLog(_ context.Context, uuid string, lines int) (string, error) {
	if _, err := d.lookup(uuid); err != nil {
		return "", err
	}
	f, err := os.Open(d.paths(uuid).console)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fault.Wrap(fault.Internal, err, "open console log")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fault.Wrap(fault.Internal, err, "stat console log")
	}
	off := max(fi.Size()-maxConsoleBytes, 0)
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && n == 0 && len(buf) > 0 {
		return "", fault.Wrap(fault.Internal, err, "read console log")
	}
	return tailLines(string(buf[:n]), lines), nil
}

// tailLines keeps the last n lines of s (all when n <= 0).
func tailLines(s string, n int) string {
	if n <= 0 {
		return s
	}
	end := len(s)
	if strings.HasSuffix(s, "\n") {
		end--
	}
	count := 0
	for i := end - 1; i >= 0; i-- {
		if s[i] == '\n' {
			count++
			if count == n {
				return s[i+1:]
			}
		}
	}
	return s
}

// VNCPort returns the loopback port of the instance's VNC server. Kinds:
// NotFound, Conflict (not running), Internal.
func (d *Driver) VNCPort(ctx context.Context, uuid string) (int, error) {
	st, err := d.State(ctx, uuid)
	if err != nil {
		return 0, err
	}
	if st.VNCPort == 0 {
		return 0, fault.Conflictf("Instance %s has no console right now.", uuid)
	}
	return st.VNCPort, nil
}

// Inventory reports the host: CPUs and memory from libvirt, disk from the
// file system holding StateDir, the hypervisor's version and the chosen
// virtualisation type. Kinds: Internal.
func (d *Driver) Inventory(context.Context) (agentapi.Inventory, error) {
	model, memKiB, cpus, mhz, _, sockets, cores, threads, err := d.c.NodeGetInfo()
	if err != nil {
		return agentapi.Inventory{}, fault.Wrap(fault.Internal, err, "read node info")
	}
	hv, err := d.c.ConnectGetVersion()
	if err != nil {
		return agentapi.Inventory{}, fault.Wrap(fault.Internal, err, "read hypervisor version")
	}
	var fs syscall.Statfs_t
	var diskGB int64
	if err := syscall.Statfs(d.cfg.StateDir, &fs); err == nil {
		diskGB = int64(fs.Blocks) * fs.Bsize >> 30
	}
	arch := int8sToString(model[:])
	ip := d.cfg.HostIP
	if ip == "" {
		ip = hostIPv4()
	}
	return agentapi.Inventory{
		VCPUs:             int(cpus),
		MemoryMB:          int64(memKiB / 1024),
		DiskGB:            diskGB,
		HypervisorType:    "QEMU",
		HypervisorVersion: int64(hv),
		VirtType:          d.virtType,
		CPUInfo:           cpuInfo(arch, int(mhz), int(sockets), int(cores), int(threads)),
		HostIP:            ip,
	}, nil
}

func int8sToString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// hostIPv4 is the first global unicast IPv4 address of the host.
func hostIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// cpuInfo is the host CPU description os-hypervisors shows, as JSON text.
func cpuInfo(arch string, mhz, sockets, cores, threads int) string {
	type topology struct {
		Sockets int `json:"sockets"`
		Cores   int `json:"cores"`
		Threads int `json:"threads"`
	}
	b, _ := json.Marshal(struct {
		Arch     string   `json:"arch"`
		MHz      int      `json:"mhz"`
		Topology topology `json:"topology"`
	}{arch, mhz, topology{sockets, cores, threads}})
	return string(b)
}
